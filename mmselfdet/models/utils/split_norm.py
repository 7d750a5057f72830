# Copyright (c) mmselfdet contributors. All rights reserved.
"""Shuffle-BN on one process: BatchNorm over equal parts of the batch.

The MoCo-style references (MoCo v2, InsLoc, DetCo, object-aware MoCo) train
on 8 GPUs with shuffle-BN: each GPU normalises its own 32 images, and the
key encoder sees the batch shuffled across GPUs, so a query and its
positive key never share batch statistics. With one process the shuffle is
a local permutation and changes nothing: query and key are normalised over
the same images, and the statistics become a channel through which the
pair can be matched (the MoCo paper's "cheating" through BN).

``norm_cfg=dict(type='SplitBN', num_splits=g)`` restores the reference's
setting on one process: in training every BatchNorm normalises each of
``g`` contiguous equal parts of its batch with that part's own statistics
(the ``g`` GPUs), while :func:`~mmselfdet.models.utils.momentum_keys`
shuffles the key batch before the key encoder as it always does (the
cross-GPU shuffle). In eval mode it is a plain BatchNorm; its parameters and
buffers have BatchNorm's names, so checkpoints load into ``BN`` and
``SyncBN`` layers unchanged.
"""
import torch
from torch import Tensor, nn

from mmselfdet.registry import MODELS

__all__ = ['SplitBatchNorm']


@MODELS.register_module('SplitBN')
class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm (any input rank 2-5) whose training statistics come from
    ``num_splits`` contiguous equal parts of the batch, each normalised
    with its own mean and variance; the running statistics are updated once
    per part. A part holds whole images when every image contributes the
    same number of rows (one box per image and level for InsLoc).

    Args:
        num_features (int): Channels.
        num_splits (int): Parts of the batch (the emulated GPUs). 1 is a
            plain BatchNorm. Defaults to 1.
        **kwargs: ``nn.BatchNorm2d``'s (``eps``, ``momentum``, ``affine``,
            ``track_running_stats``).
    """

    def __init__(self, num_features: int, num_splits: int = 1,
                 **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if not isinstance(num_splits, int) or num_splits < 1:
            raise ValueError(f'SplitBN: num_splits must be a positive int, '
                             f'got {num_splits!r}')
        self.num_splits = num_splits

    def _check_input_dim(self, input: Tensor) -> None:
        if not 2 <= input.dim() <= 5:
            raise ValueError(f'SplitBN: expected a 2-5-D input, got '
                             f'{input.dim()}-D')

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.num_splits == 1:
            return super().forward(x)
        n = x.size(0)
        if n % self.num_splits:
            raise ValueError(
                f'SplitBN: a batch of {n} rows does not split into '
                f'num_splits={self.num_splits} equal parts (images per '
                f'batch, and a box head\'s rows = boxes x levels, must be '
                f'divisible by num_splits)')
        return torch.cat([super(SplitBatchNorm, self).forward(part)
                          for part in x.chunk(self.num_splits)], dim=0)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, num_splits={self.num_splits}'
