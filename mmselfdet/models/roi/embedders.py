# Copyright (c) mmselfdet contributors. All rights reserved.
"""Box embedders: pooled RoI features -> one embedding per box.

Parameter names follow mmdet's ``Shared4Conv1FCBBoxHead`` (``shared_convs``,
``shared_fcs``) and ``ResLayer`` shared head, so the exporter maps them onto
the downstream detector by prefix only.
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class ConvFCBoxEmbedder(BaseModule):
    """``num_convs`` x (conv3x3 + norm + ReLU) -> ``num_fcs`` x (FC + ReLU)
    -> Linear ``out_channels`` (optional).

    InsLoc: 4 convs (256, BN), FC1024, FC1024, Linear 128. SoCo: 4 convs, FC
    1024 and the projector outside. The convs and the first FC transfer to
    mmdet's ``Shared4Conv1FCBBoxHead`` (with ``norm_cfg``).

    Args:
        in_channels (int): Channels of the pooled features.
        roi_size (int): Spatial size of the pooled features.
        conv_channels (int): Channels of the convs. Defaults to 256.
        num_convs (int): Number of convs. Defaults to 4.
        fc_channels (int): Channels of the FCs. Defaults to 1024.
        num_fcs (int): Number of FCs. Defaults to 2.
        out_channels (int, optional): Final Linear (no ReLU); None = the FC
            output is the embedding.
        norm_cfg (dict): Norm of the convs. Defaults to BN.
    """

    def __init__(self,
                 in_channels: int = 256,
                 roi_size: int = 7,
                 conv_channels: int = 256,
                 num_convs: int = 4,
                 fc_channels: int = 1024,
                 num_fcs: int = 2,
                 out_channels: Optional[int] = 128,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.shared_convs = nn.ModuleList([
            ConvModule(in_channels if i == 0 else conv_channels,
                       conv_channels, 3, padding=1, norm_cfg=norm_cfg)
            for i in range(num_convs)
        ])
        flat = (conv_channels if num_convs else in_channels) * roi_size**2
        self.shared_fcs = nn.ModuleList([
            nn.Linear(flat if i == 0 else fc_channels, fc_channels)
            for i in range(num_fcs)
        ])
        self.relu = nn.ReLU(inplace=True)
        self.fc_out = nn.Linear(fc_channels if num_fcs else flat,
                                out_channels) if out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        """(R, C, S, S) -> (R, D)."""
        for conv in self.shared_convs:
            x = conv(x)  # (R, C', S, S)
        x = x.flatten(1)  # (R, C' * S * S)
        for fc in self.shared_fcs:
            x = self.relu(fc(x))  # (R, F)
        if self.fc_out is not None:
            x = self.fc_out(x)  # (R, D)
        return x


@MODELS.register_module()
class ResLayerBoxEmbedder(BaseModule):
    """C4 RoI head: res5 (mmdet ``ResLayer``) on pooled C4 features, global
    average pool, then a projector MLP (InsLoc C4 variant).

    ``shared_head.*`` transfers to ``roi_head.shared_head.*`` of mmdet's
    Faster R-CNN C4.

    Args:
        depth (int): ResNet depth of the res5 stage. Defaults to 50.
        projector (dict): :class:`MLPProjector` config applied to the pooled
            res5 output.
        norm_cfg (dict): Norm of res5. Defaults to BN.
    """

    def __init__(self,
                 depth: int = 50,
                 projector: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        from mmdet.models.roi_heads.shared_heads import ResLayer
        self.shared_head = ResLayer(depth, stage=3, stride=2,
                                    norm_cfg=norm_cfg, norm_eval=False)
        self.projector = MODELS.build(projector) if projector else None

    def forward(self, x: Tensor) -> Tensor:
        """(R, 1024, S, S) -> (R, D)."""
        x = self.shared_head(x)  # (R, 2048, S/2, S/2)
        x = x.mean(dim=(2, 3))  # (R, 2048)
        return self.projector(x) if self.projector is not None else x
