# Copyright (c) mmselfdet contributors. All rights reserved.
"""DetCo's per-stage global and local projectors."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import merge_jigsaw
from .mlp import MLPProjector


@MODELS.register_module()
class MultiStageProjector(BaseModule):
    """One global and one local 2-layer MLP per backbone stage (DetCo).

    * ``forward_global``: stage features of whole views -> avg-pool -> MLP
      of that stage -> (N, D) per stage;
    * ``forward_local``: stage features of ``grid * grid`` patches per image
      (the batch is ``N * grid * grid``, see ``split_jigsaw``) -> avg-pool ->
      the pooled patch features of one image concatenated (grid*grid*C) ->
      the local MLP of that stage -> (N, D) per stage.

    Args:
        in_channels (Sequence[int]): Channels of each stage, e.g.
            (256, 512, 1024, 2048) for res2-res5.
        hid_channels (int): Hidden channels. Defaults to 2048.
        out_channels (int): Embedding dim. Defaults to 128.
        grid (int): Jigsaw grid side. Defaults to 3.
        norm_cfg (dict, optional): Norm in the MLPs (None = MoCo v2 style).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 hid_channels: int = 2048,
                 out_channels: int = 128,
                 grid: int = 3,
                 norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid = grid
        self.global_mlps = nn.ModuleList([
            MLPProjector(c, hid_channels, out_channels, norm_cfg=norm_cfg)
            for c in in_channels
        ])
        self.local_mlps = nn.ModuleList([
            MLPProjector(c * grid * grid, hid_channels, out_channels,
                         norm_cfg=norm_cfg, with_avg_pool=False)
            for c in in_channels
        ])

    def _check(self, feats: Sequence[Tensor]) -> None:
        if len(feats) != len(self.global_mlps):
            raise ValueError(f'{len(feats)} stages given, the projector has '
                             f'{len(self.global_mlps)}')

    def forward_global(self, feats: Sequence[Tensor]) -> List[Tensor]:
        self._check(feats)
        return [mlp(f) for mlp, f in zip(self.global_mlps, feats)]

    def forward_local(self, feats: Sequence[Tensor]) -> List[Tensor]:
        self._check(feats)
        out = []
        for mlp, f in zip(self.local_mlps, feats):
            pooled = f.mean(dim=(2, 3))  # (N * g * g, C)
            out.append(mlp(merge_jigsaw(pooled, self.grid)))  # (N, D)
        return out

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        return self.forward_global(feats)
