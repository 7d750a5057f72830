# Copyright (c) mmselfdet contributors. All rights reserved.
"""DetCo's per-stage global and local projectors."""
from typing import List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import merge_jigsaw
from .mlp import MLPProjector

Widths = Union[int, str, Sequence[int]]


def stage_widths(widths: Widths, in_channels: Sequence[int],
                 name: str) -> List[int]:
    """Hidden width of each stage's MLP: one int for every stage,
    ``'stage'`` for the stage's own channels, or one int per stage."""
    if widths == 'stage':
        return [int(c) for c in in_channels]
    if isinstance(widths, int):
        return [widths] * len(in_channels)
    if isinstance(widths, str) or len(widths) != len(in_channels):
        raise ValueError(f'MultiStageProjector: {name} must be an int, '
                         f"'stage' or one int per stage "
                         f'({len(in_channels)}), got {widths!r}')
    return [int(w) for w in widths]


@MODELS.register_module()
class MultiStageProjector(BaseModule):
    """One global and one local 2-layer MLP per backbone stage (DetCo).

    * ``forward_global``: stage features of whole views -> avg-pool -> MLP
      of that stage -> (N, D) per stage;
    * ``forward_local``: stage features of ``grid * grid`` patches per image
      (the batch is ``N * grid * grid``, see ``split_jigsaw``) -> avg-pool ->
      the pooled patch features of one image concatenated (grid*grid*C) ->
      the local MLP of that stage -> (N, D) per stage.

    Hidden widths: DetCo publishes none (configs/detco/README.md). The
    global MLPs default to MoCo v2's 2048 at every stage; the local MLPs to
    the stage's own width (``9 * C -> C -> 128``). Either takes an int,
    ``'stage'`` or one width per stage.

    Args:
        in_channels (Sequence[int]): Channels of each stage, e.g.
            (256, 512, 1024, 2048) for res2-res5.
        hid_channels (int | str | Sequence[int]): Hidden width of the
            global MLPs. Defaults to 2048.
        out_channels (int): Embedding dim. Defaults to 128.
        grid (int): Jigsaw grid side. Defaults to 3.
        norm_cfg (dict, optional): Norm in the MLPs (None = MoCo v2 style).
        local_hid_channels (int | str | Sequence[int], optional): Hidden
            width of the local MLPs; None: ``hid_channels``.
            Defaults to 'stage'.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 hid_channels: Widths = 2048,
                 out_channels: int = 128,
                 grid: int = 3,
                 norm_cfg: Optional[dict] = None,
                 local_hid_channels: Optional[Widths] = 'stage',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid = grid
        if local_hid_channels is None:
            local_hid_channels = hid_channels
        self.hid_widths = stage_widths(hid_channels, in_channels,
                                       'hid_channels')
        self.local_hid_widths = stage_widths(local_hid_channels, in_channels,
                                             'local_hid_channels')
        self.global_mlps = nn.ModuleList([
            MLPProjector(c, h, out_channels, norm_cfg=norm_cfg)
            for c, h in zip(in_channels, self.hid_widths)
        ])
        self.local_mlps = nn.ModuleList([
            MLPProjector(c * grid * grid, h, out_channels,
                         norm_cfg=norm_cfg, with_avg_pool=False)
            for c, h in zip(in_channels, self.local_hid_widths)
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
