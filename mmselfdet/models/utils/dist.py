# Copyright (c) mmselfdet contributors. All rights reserved.
"""Shuffle-BN helpers (MoCo): shuffle the key batch across ranks so that
BatchNorm statistics cannot leak which key matches which query."""
from typing import Tuple

import torch
from mmengine.dist import broadcast, get_rank, get_world_size
from torch import Tensor

from .feature_queue import concat_all_gather


@torch.no_grad()
def batch_shuffle(x: Tensor, *extra: Tensor) -> Tuple:
    """Shuffle a batch across all ranks.

    Returns the local part of the shuffled global batch and the index that
    undoes the shuffle (pass it to :func:`batch_unshuffle`). Tensors in
    ``extra`` (e.g. one box per image) get the same permutation and are
    returned after ``x``: ``(x, *extra, unshuffle)``. With a single process
    the batch is permuted locally, which keeps the code path the same on CPU
    tests.
    """
    world = get_world_size()
    local_n = x.size(0)
    perm = torch.randperm(local_n * world, device=x.device)
    if world > 1:
        broadcast(perm, src=0)
    unshuffle = torch.argsort(perm)
    local_idx = perm.view(world, local_n)[get_rank()]
    out = [concat_all_gather(t)[local_idx] for t in (x, ) + extra]
    return (*out, unshuffle)


@torch.no_grad()
def batch_unshuffle(x: Tensor, unshuffle: Tensor) -> Tensor:
    """Undo :func:`batch_shuffle` for the keys computed on the shuffled
    batch; returns this rank's original samples in their original order."""
    world = get_world_size()
    local_n = x.size(0)
    x_all = concat_all_gather(x)  # (N * world, ...)
    local_idx = unshuffle.view(world, local_n)[get_rank()]
    return x_all[local_idx]
