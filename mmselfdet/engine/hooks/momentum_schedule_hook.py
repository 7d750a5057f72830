# Copyright (c) mmselfdet contributors. All rights reserved.
"""`MomentumScheduleHook`: the momentum schedule ends with training."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmselfdet.registry import HOOKS


@HOOKS.register_module()
class MomentumScheduleHook(Hook):
    """Tell every :class:`CosineMomentumEMA` of the model how many updates
    the run has (``runner.max_iters``), so the momentum schedule ends with
    training, for epoch- and iteration-based loops alike."""

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        from mmselfdet.models.utils.momentum import CosineMomentumEMA
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        emas = [m for m in model.modules() if isinstance(m, CosineMomentumEMA)]
        assert emas, ('MomentumScheduleHook: the model has no '
                      'CosineMomentumEMA (set end_momentum on the algorithm, '
                      'or remove the hook)')
        for ema in emas:
            ema.max_steps = runner.max_iters
