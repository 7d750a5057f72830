# Copyright (c) mmselfdet contributors. All rights reserved.
"""The downstream box heads of the papers' fine-tuning protocol
(docs/methods.md §7): mmdet's 4conv1fc head with SyncBN in its convs, and
InsLoc's variant with one more norm after fc1.

Both keep mmdet's ``Shared4Conv1FCBBoxHead`` parameter names
(``shared_convs.{i}.conv/bn``, ``shared_fcs.0``), so InsLoc's and SoCo's
exports load into them by name; the extra norm (``fc_extra_norm``) is new
and trained from scratch downstream.
"""
from typing import Tuple

from mmcv.cnn import build_norm_layer
from mmdet.models.roi_heads.bbox_heads import Shared4Conv1FCBBoxHead
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class Shared4Conv1FCSyncBNBBoxHead(Shared4Conv1FCBBoxHead):
    """4 x (conv3x3 + norm + ReLU) -> FC + ReLU -> cls / reg, with SyncBN in
    the convs by default (mmengine's Runner reverts SyncBN to BN when not
    distributed).

    Args:
        fc_out_channels (int): Channels of fc1. Defaults to 1024.
        norm_cfg (dict): Norm of the convs. Defaults to SyncBN.
    """

    def __init__(self,
                 fc_out_channels: int = 1024,
                 norm_cfg: dict = dict(type='SyncBN', requires_grad=True),
                 **kwargs) -> None:
        super().__init__(fc_out_channels=fc_out_channels, norm_cfg=norm_cfg,
                         **kwargs)


@MODELS.register_module()
class Shared4Conv1FCExtraNormBBoxHead(Shared4Conv1FCSyncBNBBoxHead):
    """InsLoc's downstream box head: :class:`Shared4Conv1FCSyncBNBBoxHead`
    with a norm (the convs' ``norm_cfg``) after fc1 + ReLU, before the
    classifier and the regressor (the official InsLoc detectron2 head).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fc_extra_norm = build_norm_layer(self.norm_cfg,
                                              self.fc_out_channels)[1]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, C, S, S) RoI features -> (cls_score, bbox_pred)."""
        for conv in self.shared_convs:
            x = conv(x)  # (R, 256, S, S)
        x = x.flatten(1)  # (R, 256 * S * S)
        for fc in self.shared_fcs:
            x = self.relu(fc(x))  # (R, F)
        # a 2d norm (BN / SyncBN) on (R, F, 1, 1)
        x = self.fc_extra_norm(x[:, :, None, None]).flatten(1)  # (R, F)
        cls_score = self.fc_cls(x) if self.with_cls else None
        bbox_pred = self.fc_reg(x) if self.with_reg else None
        return cls_score, bbox_pred
