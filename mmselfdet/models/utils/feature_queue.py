# Copyright (c) mmselfdet contributors. All rights reserved.
"""The one negative-key queue every contrastive method uses."""
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from torch import Tensor

from mmselfdet.registry import MODELS


def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (no gradient).

    Every rank must pass a tensor of the same shape. With a single process
    this returns the input unchanged.
    """
    if get_world_size() == 1:
        return tensor
    return torch.cat(all_gather(tensor.contiguous()), dim=0)


@MODELS.register_module()
class FeatureQueue(nn.Module):
    """A FIFO memory bank of key features (MoCo's dictionary).

    The buffer and its write pointer are registered buffers, so they are
    saved in checkpoints and restored on resume. ``enqueue`` gathers the
    keys of all ranks first, so every rank holds the same queue.

    Args:
        length (int): Number of keys kept (K).
        feat_dim (int): Dimension of a key.
        num_queues (int): Independent queues of the same shape kept side by
            side (e.g. one per FPN level). Defaults to 1.
        normalize_init (bool): L2-normalise the random initial keys.
            Defaults to True.
    """

    def __init__(self,
                 length: int,
                 feat_dim: int,
                 num_queues: int = 1,
                 normalize_init: bool = True) -> None:
        super().__init__()
        if length <= 0 or feat_dim <= 0 or num_queues <= 0:
            raise ValueError('FeatureQueue: length, feat_dim and num_queues '
                             f'must be positive, got {length}, {feat_dim}, '
                             f'{num_queues}')
        self.length = length
        self.feat_dim = feat_dim
        self.num_queues = num_queues
        buf = torch.randn(num_queues, length, feat_dim)  # (Q, K, D)
        if normalize_init:
            buf = F.normalize(buf, dim=-1)
        self.register_buffer('buffer', buf)
        self.register_buffer('ptr', torch.zeros(num_queues, dtype=torch.long))

    def get(self, index: int = 0) -> Tensor:
        """Return a detached copy of queue ``index`` as a (K, D) tensor.

        A copy, because :meth:`enqueue` later writes the buffer in place
        while autograd still needs the negatives of this step.
        """
        return self.buffer[index].detach().clone()  # (K, D)

    @torch.no_grad()
    def enqueue(self, keys: Tensor, index: int = 0) -> None:
        """Gather ``keys`` (N, D) from all ranks and write them at the
        pointer of queue ``index``, wrapping around the end."""
        keys = concat_all_gather(keys.detach())  # (N * world, D)
        if keys.dim() != 2 or keys.size(1) != self.feat_dim:
            raise ValueError(f'FeatureQueue expects keys of shape (N, '
                             f'{self.feat_dim}), got {tuple(keys.shape)}')
        n = keys.size(0)
        if n > self.length:
            keys, n = keys[-self.length:], self.length
        # the pointer stays on the device (reading it would wait there)
        ptr = self.ptr[index]
        idx = (torch.arange(n, device=ptr.device) + ptr) % self.length
        self.buffer[index, idx] = keys.to(self.buffer.dtype)
        self.ptr[index] = (ptr + n) % self.length

    def extra_repr(self) -> str:
        return (f'length={self.length}, feat_dim={self.feat_dim}, '
                f'num_queues={self.num_queues}')


def all_queues(queue: FeatureQueue) -> List[Tensor]:
    """List the (K, D) queues of a :class:`FeatureQueue`."""
    return [queue.get(i) for i in range(queue.num_queues)]
