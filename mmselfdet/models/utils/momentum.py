# Copyright (c) mmselfdet contributors. All rights reserved.
"""Momentum (target / key) encoders on top of mmengine's EMA.

Convention (mmengine's): ``avg = avg * (1 - momentum) + online * momentum``,
so ``momentum`` is the weight of the online network: MoCo's ``m=0.999`` is
``momentum=0.001``; BYOL's ``tau=0.996`` is ``momentum=0.004``.
"""
import math
from typing import Callable, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage
from torch import Tensor

from mmselfdet.registry import MODELS
from .dist import batch_shuffle, batch_unshuffle


def _check_momentum(momentum: float) -> None:
    if not 0.0 <= momentum <= 0.5:
        raise ValueError(
            f'momentum={momentum}: mmselfdet uses mmengine\'s EMA convention, '
            'where the value is the weight of the online network, in [0, 0.5] '
            '(MoCo\'s m=0.999 is momentum=0.001, BYOL\'s tau=0.996 is '
            'momentum=0.004)')


@MODELS.register_module()
class MomentumEMA(ExponentialMovingAverage):
    """mmengine's :class:`ExponentialMovingAverage` (the same state dict and
    the same values) with an update that never waits for the device.

    mmengine's ``update_parameters`` reads its ``steps`` buffer (``steps ==
    0``, ``steps % interval``) and a schedule reads it once per parameter:
    on a GPU each read waits for every kernel queued before it, hundreds of
    times a step. Here the count is mirrored on the host (read back once
    when the buffer was loaded, moved or written from outside: tensor
    identity and version counter), and parameters and buffers are updated
    with one ``foreach`` call each instead of a kernel per tensor
    (``tests/test_models/test_momentum_ema.py``: bit-identical to
    mmengine's update, and it runs on the ``meta`` device).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._steps_mirror: Optional[tuple] = None
        self._mirror_steps(0)

    def _mirror_steps(self, value: int) -> None:
        buf = self.steps
        try:
            self._steps_mirror = (value, buf, buf._version)
        except RuntimeError:  # an inference tensor: read it each time
            self._steps_mirror = None

    def _apply(self, fn, *args, **kwargs):
        # a move (.to / .cuda) makes a new buffer with the same count
        old, known = self.steps, self._steps_mirror
        valid = known is not None and known[1] is old and \
            known[2] == old._version
        out = super()._apply(fn, *args, **kwargs)
        if valid and self.steps is not old:
            self._mirror_steps(known[0])
        return out

    def current_momentum(self, steps: int) -> float:
        """The online network's weight at update ``steps``."""
        return self.momentum

    def avg_func(self, averaged_param: Tensor, source_param: Tensor,
                 steps: int) -> None:
        averaged_param.lerp_(source_param,
                             self.current_momentum(int(steps)))

    def host_steps(self) -> int:
        """``int(self.steps)``, read from the device only when the buffer
        changed other than by :meth:`update_parameters`."""
        buf, mirror = self.steps, self._steps_mirror
        try:
            version = buf._version
        except RuntimeError:  # an inference tensor has no version counter
            return int(buf)
        if mirror is None or mirror[1] is not buf or mirror[2] != version:
            self._mirror_steps(int(buf))
            mirror = self._steps_mirror
        return mirror[0]

    def update_parameters(self, model: nn.Module) -> None:
        steps = self.host_steps()
        src = (model.state_dict()
               if self.update_buffers else dict(model.named_parameters()))
        # mmengine's cached ``avg_parameters`` can hold stale tensors after
        # a move that makes new parameters (e.g. to ``meta``): look them up
        dst = (self.module.state_dict() if self.update_buffers else dict(
            self.module.named_parameters()))
        if steps == 0:
            _foreach_copy([p.data for p in dst.values()],
                          [src[k].data for k in dst])
        elif steps % self.interval == 0:
            keys = [k for k, p in dst.items() if p.dtype.is_floating_point]
            avg = [dst[k].data for k in keys]
            new = [src[k].data.to(a.device) for k, a in zip(keys, avg)]
            if type(self).avg_func is MomentumEMA.avg_func:
                torch._foreach_lerp_(avg, new, self.current_momentum(steps))
            else:  # a subclass's own average
                for a, b in zip(avg, new):
                    self.avg_func(a, b, steps)
        if not self.update_buffers:
            mine = [b.data for b in self.module.buffers()]
            _foreach_copy(mine, [b.data.to(m.device)
                                 for m, b in zip(mine, model.buffers())])
        self.steps += 1
        self._mirror_steps(steps + 1)


def _foreach_copy(dst: List[Tensor], src: List[Tensor]) -> None:
    if not dst:
        return
    if hasattr(torch, '_foreach_copy_'):  # torch >= 2.2
        torch._foreach_copy_(dst, src)
    else:
        for d, s in zip(dst, src):
            d.copy_(s)


@MODELS.register_module()
class CosineMomentumEMA(MomentumEMA):
    """EMA whose momentum decays from ``momentum`` to ``end_momentum`` on a
    cosine over ``max_steps`` updates (BYOL / SoCo: tau 0.99 -> 1 is
    ``momentum=0.01, end_momentum=0``).

    ``max_steps`` is set from the runner by :class:`MomentumScheduleHook`
    before training (or passed explicitly); until then the base momentum is
    used. The step counter is the EMA's ``steps`` buffer, so a resumed run
    continues the schedule.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.004,
                 end_momentum: float = 0.0,
                 max_steps: Optional[int] = None,
                 **kwargs) -> None:
        _check_momentum(momentum)
        _check_momentum(end_momentum)
        # mmengine's EMA rejects momentum == 0; the schedule may reach it
        super().__init__(model, momentum=max(momentum, 1e-12), **kwargs)
        self.base_momentum = momentum
        self.end_momentum = end_momentum
        self.max_steps = max_steps

    def current_momentum(self, steps: int) -> float:
        if not self.max_steps:
            return self.base_momentum
        t = min(float(steps) / self.max_steps, 1.0)
        cos = (math.cos(math.pi * t) + 1) / 2
        return self.end_momentum + (self.base_momentum -
                                    self.end_momentum) * cos


def momentum_copy(module: nn.Module,
                  momentum: float,
                  end_momentum: Optional[float] = None
                  ) -> ExponentialMovingAverage:
    """Wrap a deep copy of ``module`` in an mmengine EMA (its keys are
    ``module.<name>``: a :class:`BoxEncoder` keeps its part names).

    The copy is frozen (no gradients) and its buffers (BN statistics) follow
    the online network, as in mmpretrain. The EMA keeps a ``steps`` buffer,
    so a resumed run continues where it stopped.

    Args:
        module (nn.Module): The online network.
        momentum (float): Weight of the online network in [0, 0.5]; larger
            values are almost surely the other convention and raise.
        end_momentum (float, optional): If given, the momentum follows a
            cosine from ``momentum`` to ``end_momentum``
            (:class:`CosineMomentumEMA`).
    """
    _check_momentum(momentum)
    if momentum == 0:
        raise ValueError('momentum=0 would never update the momentum encoder')
    if end_momentum is None:
        return MomentumEMA(module, momentum=momentum)
    return CosineMomentumEMA(module, momentum=momentum,
                             end_momentum=end_momentum)


def build_momentum_encoder(*modules: nn.Module,
                           momentum: float,
                           end_momentum: Optional[float] = None
                           ) -> ExponentialMovingAverage:
    """:func:`momentum_copy` of ``modules`` chained in an ``nn.Sequential``
    (MoCo v2, BYOL, DetCo: ``backbone, neck``; keys ``module.0.*``)."""
    return momentum_copy(nn.Sequential(*modules), momentum, end_momentum)


Keys = Union[Tensor, List[Tensor]]


@torch.no_grad()
def momentum_keys(ema: ExponentialMovingAverage,
                  img: Tensor,
                  *extra: Tensor,
                  encode: Optional[Callable[..., Keys]] = None,
                  online: Optional[nn.Module] = None,
                  shuffle_bn: bool = True) -> Keys:
    """The key path of the MoCo-style methods (MoCo v2, InsLoc, DetCo):
    update the EMA from ``online`` (when given; MoCo updates before its
    keys), shuffle the batch across ranks (shuffle-BN), encode with the
    momentum network, undo the shuffle and L2-normalise.

    Args:
        ema (ExponentialMovingAverage): The momentum encoder.
        img (Tensor): (N, 3, H, W) key view.
        *extra (Tensor): Per-image tensors shuffled with ``img`` (e.g. one
            box per image, (N, 4)) and passed on to ``encode``.
        encode (callable, optional): ``encode(ema.module, img, *extra)`` ->
            (N, D) keys or a list of them; defaults to ``ema(img)``.
        online (nn.Module, optional): The online network to update the EMA
            from first (same parameter names as ``ema.module``).
        shuffle_bn (bool): Shuffle-BN. Defaults to True.

    Returns:
        The normalised keys in the batch's own order, shaped as ``encode``
        returns them.
    """
    if online is not None:
        ema.update_parameters(online)
    if shuffle_bn:
        img, *extra, unshuffle = batch_shuffle(img, *extra)
    keys = encode(ema.module, img, *extra) if encode else ema(img)
    single = isinstance(keys, Tensor)
    keys = [keys] if single else list(keys)
    if shuffle_bn:
        keys = [batch_unshuffle(k, unshuffle) for k in keys]
    keys = [F.normalize(k, dim=1) for k in keys]  # (N, D) each
    return keys[0] if single else keys
