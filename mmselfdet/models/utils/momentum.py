# Copyright (c) mmselfdet contributors. All rights reserved.
"""Momentum (target / key) encoders on top of mmengine's EMA.

Convention (mmengine's): ``avg = avg * (1 - momentum) + online * momentum``,
so ``momentum`` is the weight of the online network: MoCo's ``m=0.999`` is
``momentum=0.001``; BYOL's ``tau=0.996`` is ``momentum=0.004``.
"""
import math
from typing import Optional

import torch.nn as nn
from mmengine.model import ExponentialMovingAverage
from torch import Tensor

from mmselfdet.registry import MODELS


def _check_momentum(momentum: float) -> None:
    if not 0.0 <= momentum <= 0.5:
        raise ValueError(
            f'momentum={momentum}: mmselfdet uses mmengine\'s EMA convention, '
            'where the value is the weight of the online network, in [0, 0.5] '
            '(MoCo\'s m=0.999 is momentum=0.001, BYOL\'s tau=0.996 is '
            'momentum=0.004)')


@MODELS.register_module()
class CosineMomentumEMA(ExponentialMovingAverage):
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

    def avg_func(self, averaged_param: Tensor, source_param: Tensor,
                 steps: int) -> None:
        m = self.current_momentum(int(steps))
        averaged_param.lerp_(source_param, m)


def build_momentum_encoder(*modules: nn.Module,
                           momentum: float,
                           end_momentum: Optional[float] = None
                           ) -> ExponentialMovingAverage:
    """Wrap a deep copy of ``modules`` (chained) in an mmengine EMA.

    The copy is frozen (no gradients) and its buffers (BN statistics) follow
    the online network, as in mmpretrain. The EMA keeps a ``steps`` buffer,
    so a resumed run continues where it stopped.

    Args:
        *modules: The online modules, e.g. ``backbone, neck``; they are
            applied in order by the returned encoder.
        momentum (float): Weight of the online network in [0, 0.5]; larger
            values are almost surely the other convention and raise.
        end_momentum (float, optional): If given, the momentum follows a
            cosine from ``momentum`` to ``end_momentum``
            (:class:`CosineMomentumEMA`).
    """
    _check_momentum(momentum)
    if momentum == 0:
        raise ValueError('momentum=0 would never update the momentum encoder')
    seq = nn.Sequential(*modules)
    if end_momentum is None:
        return ExponentialMovingAverage(seq, momentum=momentum)
    return CosineMomentumEMA(seq, momentum=momentum, end_momentum=end_momentum)
