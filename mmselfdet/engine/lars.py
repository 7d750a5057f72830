# Copyright (c) mmselfdet contributors. All rights reserved.
"""LARS (You et al. 2017), the optimizer of BYOL and SoCo."""
from typing import Iterable, Optional

import torch
from torch.optim.optimizer import Optimizer

from mmselfdet.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class LARS(Optimizer):
    """SGD with layer-wise adaptive rate scaling.

    For every parameter not marked ``lars_exclude`` the update direction
    ``g + wd * w`` is scaled by the trust ratio ``eta * ||w|| / ||g + wd *
    w||`` (1 when either norm is 0). Groups with ``lars_exclude=True`` (BN and
    biases, set through mmengine's ``paramwise_cfg.custom_keys``, e.g.
    ``dict(bn=dict(decay_mult=0, lars_exclude=True))``) take plain momentum
    SGD steps.

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
