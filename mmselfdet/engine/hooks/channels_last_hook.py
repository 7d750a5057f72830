# Copyright (c) mmselfdet contributors. All rights reserved.
"""Run a model in the channels_last memory format (a config switch)."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmselfdet.models.utils.memory_format import to_channels_last
from mmselfdet.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model to ``torch.channels_last`` before training.

    Add ``custom_hooks = [dict(type='ChannelsLastHook')]`` to a config (or
    ``tools/benchmarks/throughput.py --channels-last`` to measure it). It
    pays only where cuDNN has NHWC kernels (fp16 / bf16 convolutions on
    tensor cores); on a CPU it usually costs. Every mmcv ``RoIAlign`` in the
    model is guarded (mmcv's kernel assumes NCHW and is silently wrong on
    channels_last input, see :mod:`mmselfdet.models.utils.memory_format`).
    Under DDP the parameters change layout after wrapping: correct, but the
    gradient buckets are copied (PyTorch warns about grad strides).
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        guarded = to_channels_last(model)
        print_log(f'ChannelsLastHook: model in channels_last, {guarded} '
                  'RoIAlign module(s) guarded', logger='current')
