# Copyright (c) mmselfdet contributors. All rights reserved.
"""The former way to run self-training rounds, a hook on a stock loop:
**removed**. Building it raises, naming the loop to use.

The hook restarted a stock loop's dataloader by writing private state of
mmengine's loop, sampler and mmdet's batch sampler. The self-training
loops (:mod:`mmselfdet.simdetr.self_training`) run the same rounds and
rebuild their dataloader through ``runner.build_dataloader``; no config of
this repository names the hook any more. The name stays registered so that
an old config gets the error below instead of "not in the registry".
"""
from mmengine.hooks import Hook

from mmselfdet.registry import HOOKS

__all__ = ['SelfTrainingHook']

_MOVED = (
    'SelfTrainingHook was removed: self-training rounds run in the training '
    "loop. Delete dict(type='SelfTrainingHook', ...) from custom_hooks and "
    "put its arguments into train_cfg: train_cfg=dict(type="
    "'SelfTrainingLoop', max_iters=..., interval=..., num_rounds=..., "
    "label_dataloader=..., ...) (or type='SelfTrainingEpochLoop' with "
    'max_epochs for a hook that had by_epoch=True); see '
    'mmselfdet/simdetr/self_training.py and configs/simdetr/README.md')


@HOOKS.register_module()
class SelfTrainingHook(Hook):
    """Removed; raises ``TypeError`` naming ``SelfTrainingLoop`` /
    ``SelfTrainingEpochLoop`` and the config change (module doc).

    Raises:
        TypeError: always.
    """

    def __init__(self, *args, **kwargs) -> None:
        raise TypeError(_MOVED)
