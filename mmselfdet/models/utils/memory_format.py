# Copyright (c) mmselfdet contributors. All rights reserved.
"""channels_last for a built model, with the RoI ops kept correct.

mmcv 2.1's ``RoIAlign`` reads its input through a raw pointer as NCHW: on a
``torch.channels_last`` feature map it silently returns wrong values (no
error; ``tests/test_models/test_memory_format.py`` shows it). A model
converted with :func:`to_channels_last` therefore also gets a forward
pre-hook on every mmcv ``RoIAlign`` module that makes its input
NCHW-contiguous (a no-op for a contiguous input); mmselfdet's functional
``roi_align`` calls do the same themselves.
"""
from typing import Tuple

import torch
from torch import nn

__all__ = ['to_channels_last', 'nchw_contiguous_input']


def nchw_contiguous_input(module: nn.Module, args: Tuple) -> Tuple:
    """Forward pre-hook: the first argument as an NCHW-contiguous tensor."""
    if args and torch.is_tensor(args[0]) and not args[0].is_contiguous():
        return (args[0].contiguous(), ) + tuple(args[1:])
    return None


def to_channels_last(model: nn.Module) -> int:
    """Convert ``model``'s 4-D parameters and buffers to channels_last in
    place (convolutions then run NHWC, and their outputs stay channels_last)
    and guard every mmcv ``RoIAlign`` in it.

    Returns:
        int: How many RoIAlign modules were guarded.
    """
    from mmcv.ops import RoIAlign
    model.to(memory_format=torch.channels_last)
    guarded = 0
    for m in model.modules():
        if isinstance(m, RoIAlign) and not getattr(m, '_nchw_guard', False):
            m.register_forward_pre_hook(nchw_contiguous_input)
            m._nchw_guard = True
            guarded += 1
    return guarded
