# Copyright (c) mmselfdet contributors. All rights reserved.
"""LARS (You et al. 2017), the optimizer of BYOL and SoCo, and the
optimizer-wrapper constructor that excludes every 1-D parameter from weight
decay and the trust ratio as both methods do."""
import warnings
from typing import Iterable, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch.optim.optimizer import Optimizer

from mmselfdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIMIZERS


@OPTIMIZERS.register_module()
class LARS(Optimizer):
    """SGD with layer-wise adaptive rate scaling.

    For every parameter not marked ``lars_exclude`` the update direction
    ``g + wd * w`` is scaled by the trust ratio ``eta * ||w|| / ||g + wd *
    w||`` (1 when either norm is 0). Groups with ``lars_exclude=True`` take
    plain momentum SGD steps (with their own ``weight_decay``). BYOL and SoCo
    exclude every 1-D parameter (all biases, BN / BN1d weights) and do not
    decay it: build LARS through ``LARSOptimWrapperConstructor``
    (``optim_wrapper=dict(constructor='LARSOptimWrapperConstructor', ...)``),
    which marks those groups; LARS warns when it gets a 1-D parameter in a
    group without ``lars_exclude``.

    Args:
        params: Parameters or param groups.
        lr (float): Learning rate.
        momentum (float): Momentum. Defaults to 0.9.
        weight_decay (float): Weight decay. Defaults to 0.
        eta (float): Trust coefficient. Defaults to 0.001.
        eps (float): Added to the update norm. Defaults to 1e-8.
        nesterov (bool): Nesterov momentum. Defaults to False.
    """

    def __init__(self,
                 params: Iterable,
                 lr: float,
                 momentum: float = 0.9,
                 weight_decay: float = 0.0,
                 eta: float = 0.001,
                 eps: float = 1e-8,
                 nesterov: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f'LARS: invalid lr={lr}, momentum={momentum}, '
                             f'weight_decay={weight_decay} or eta={eta}')
        if nesterov and momentum <= 0:
            raise ValueError('LARS: nesterov needs momentum > 0')
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        eta=eta, eps=eps, nesterov=nesterov,
                        lars_exclude=False)
        super().__init__(params, defaults)
        flat = sum(p.ndim <= 1 for g in self.param_groups if
                   not g['lars_exclude'] for p in g['params'])
        if flat:
            warnings.warn(
                f'LARS: {flat} parameter(s) with ndim <= 1 (biases, norm '
                'weights) are in groups without lars_exclude, so they are '
                'decayed and LARS-scaled; BYOL / SoCo exclude them: set '
                "optim_wrapper.constructor='LARSOptimWrapperConstructor'")

    @torch.no_grad()
    def step(self, closure: Optional[callable] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, mom, eta = group['weight_decay'], group['momentum'], group['eta']
            for p in group['params']:
                if p.grad is None:
                    continue
                d_p = p.grad
                if wd != 0:
                    d_p = d_p.add(p, alpha=wd)
                if not group.get('lars_exclude', False):
                    w_norm = torch.norm(p)
                    g_norm = torch.norm(d_p)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        eta * w_norm / (g_norm + group['eps']),
                        torch.ones_like(w_norm))
                    d_p = d_p.mul(trust)
                if mom != 0:
                    state = self.state[p]
                    buf = state.get('momentum_buffer')
                    if buf is None:
                        buf = state['momentum_buffer'] = d_p.clone()
                    else:
                        buf.mul_(mom).add_(d_p)
                    d_p = d_p.add(buf, alpha=mom) if group['nesterov'] else buf
                p.add_(d_p, alpha=-group['lr'])
        return loss


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LARSOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor plus the LARS exclusion of BYOL / SoCo.

    With ``paramwise_cfg.exclude_1d=True`` (the default) every parameter of
    at most one dimension (every bias, the weights and biases of BN, BN1d,
    GN, LN, whatever their module names) gets ``weight_decay=0`` and
    ``lars_exclude=True``; weights of two or more dimensions keep the
    optimizer's weight decay and the trust ratio. The rule is applied after
    mmengine's paramwise options, so for 1-D parameters it wins over
    ``custom_keys`` / ``*_decay_mult`` (their ``lr_mult`` still applies).

    Example::

        optim_wrapper = dict(
            type='OptimWrapper',
            constructor='LARSOptimWrapperConstructor',
            optimizer=dict(type='LARS', lr=0.3, momentum=0.9,
                           weight_decay=1e-6),
            paramwise_cfg=dict(exclude_1d=True))

    Args:
        optim_wrapper_cfg (dict): As for ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): mmengine's paramwise options plus
            ``exclude_1d`` (bool). Defaults to ``dict(exclude_1d=True)``.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        # never empty, so every parameter gets its own group (add_params)
        paramwise_cfg = {'exclude_1d': True, **(paramwise_cfg or {})}
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', is_dcn_module=None) -> None:
        """Add ``module``'s parameters as mmengine does, then mark the 1-D
        ones. mmengine recurses through ``self.add_params``, so nested calls
        mark their groups first; marking again is idempotent."""
        first = len(params)
        super().add_params(params, module, prefix, is_dcn_module)
        if not self.paramwise_cfg['exclude_1d']:
            return
        flat = 0
        for group in params[first:]:
            if all(p.ndim <= 1 for p in group['params']):
                group['weight_decay'] = 0.0
                group['lars_exclude'] = True
                flat += 1
        if not prefix:  # the root call
            print_log(f'LARSOptimWrapperConstructor: {flat} of '
                      f'{len(params) - first} parameters (ndim <= 1) take '
                      'no weight decay and no LARS trust ratio',
                      logger='current')
