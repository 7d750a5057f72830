# Copyright (c) mmselfdet contributors. All rights reserved.
"""RoI pooling of view boxes on one or several feature levels (InsLoc,
SoCo and the end-to-end object-level method share it)."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.ops import RoIAlign
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class MultiLevelRoIPooler(nn.Module):
    """RoIAlign of boxes on feature levels.

    ``mode='all'`` pools every box on every level (InsLoc: one embedding and
    one loss per level); ``mode='size'`` pools each box on the one level its
    size selects (SoCo: ``sqrt(w * h)`` in view pixels against
    ``size_thresholds``; level i takes boxes with size < thresholds[i], the
    last level the rest).

    Args:
        featmap_strides (Sequence[int]): Stride of each level, e.g.
            (4, 8, 16, 32) for P2-P5 or (16, ) for C4.
        out_size (int): RoIAlign output size. Defaults to 7.
        sampling_ratio (int): RoIAlign sampling ratio (0 = adaptive).
        aligned (bool): Half-pixel aligned RoIAlign. Defaults to True.
        mode (str): 'all' or 'size'. Defaults to 'all'.
        size_thresholds (Sequence[float], optional): For ``mode='size'``,
            ``len(featmap_strides) - 1`` increasing thresholds.
    """

    def __init__(self,
                 featmap_strides: Sequence[int],
                 out_size: int = 7,
                 sampling_ratio: int = 0,
                 aligned: bool = True,
                 mode: str = 'all',
                 size_thresholds: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        if mode not in ('all', 'size'):
            raise ValueError(f'mode must be "all" or "size", got "{mode}"')
        self.featmap_strides = tuple(featmap_strides)
        self.mode = mode
        if mode == 'size':
            n = len(self.featmap_strides) - 1
            if size_thresholds is None or len(size_thresholds) != n or \
                    list(size_thresholds) != sorted(size_thresholds):
                raise ValueError(
                    f'mode="size" needs {n} increasing size_thresholds for '
                    f'strides {self.featmap_strides}, got {size_thresholds}')
        self.size_thresholds = tuple(size_thresholds or ())
        self.out_size = out_size
        self.roi_layers = nn.ModuleList([
            RoIAlign(out_size, spatial_scale=1.0 / s,
                     sampling_ratio=sampling_ratio, aligned=aligned)
            for s in self.featmap_strides
        ])

    @property
    def num_levels(self) -> int:
        return len(self.featmap_strides)

    def assign_levels(self, rois: Tensor) -> Tensor:
        """Level index (R,) of each roi by its size (``mode='size'``)."""
        wh = (rois[:, 3:5] - rois[:, 1:3]).clamp(min=0)  # (R, 2)
        size = (wh[:, 0] * wh[:, 1]).sqrt()  # (R,)
        thr = torch.as_tensor(self.size_thresholds, dtype=size.dtype,
                              device=size.device)
        return torch.bucketize(size, thr, right=True)  # (R,)

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> List[Tensor]:
        """Pool ``rois`` (R, 5).

        Returns:
            ``mode='all'``: a list with one (R, C, S, S) tensor per level;
            ``mode='size'``: a one-element list with (R, C, S, S), each roi
            pooled at its level.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'{len(feats)} feature levels given, the pooler '
                             f'has strides {self.featmap_strides}')
        rois = rois.to(feats[0].dtype)
        # mmcv's RoIAlign reads NCHW: channels_last features would be
        # misread silently (a no-op for contiguous features)
        feats = [f.contiguous() for f in feats]
        if self.mode == 'all':
            return [layer(f, rois) for layer, f in zip(self.roi_layers, feats)]
        levels = self.assign_levels(rois)
        c = feats[0].size(1)
        out = feats[0].new_zeros(rois.size(0), c, self.out_size,
                                 self.out_size)  # (R, C, S, S)
        for lvl, (layer, f) in enumerate(zip(self.roi_layers, feats)):
            idx = (levels == lvl).nonzero(as_tuple=True)[0]
            if idx.numel():
                out[idx] = layer(f, rois[idx])
            else:
                # keep every level in the graph (DDP needs all parameters
                # used); contributes exactly zero
                out = out + 0 * f.sum()
        return [out]
