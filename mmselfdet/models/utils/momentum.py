# Copyright (c) mmselfdet contributors. All rights reserved.
"""Momentum (target / key) encoders on top of mmengine's EMA."""
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage


def build_momentum_encoder(*modules: nn.Module,
                           momentum: float) -> ExponentialMovingAverage:
    """Wrap a deep copy of ``modules`` (chained) in an mmengine EMA.

    Momentum convention is mmengine's: ``avg = avg * (1 - momentum) +
    online * momentum``, so ``momentum=0.001`` is MoCo's ``m=0.999``. The
    copy is frozen (no gradients), and its buffers (BN statistics) follow the
    online network, as in mmpretrain. The EMA keeps a ``steps`` buffer, so a
    resumed run continues the schedule.

    Args:
        *modules: The online modules, e.g. ``backbone, neck``; they are
            applied in order by the returned encoder.
        momentum (float): mmengine EMA momentum in (0, 0.5]; larger values
            are almost surely the other convention and raise an error.
    """
    if not 0.0 < momentum <= 0.5:
        raise ValueError(
            f'momentum={momentum}: mmselfdet uses mmengine\'s EMA convention, '
            'where the value is the weight of the online network, in (0, 0.5] '
            '(MoCo\'s m=0.999 is momentum=0.001)')
    return ExponentialMovingAverage(nn.Sequential(*modules), momentum=momentum)
