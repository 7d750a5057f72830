# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo (Wei et al., NeurIPS 2021): object-level BYOL on proposal boxes."""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..roi import boxes_to_rois
from ..utils import build_momentum_encoder
from .base import BaseSelfSupDetector, ViewInputs, ViewSamples


def boxes_and_ids(samples: list) -> Tuple[List[Tensor], List[Tensor]]:
    """Per-image boxes (n_i, 4) and correspondence ids (n_i,)."""
    boxes, ids = [], []
    for s in samples:
        b = s.gt_instances.bboxes
        b = b.tensor if hasattr(b, 'tensor') else b
        boxes.append(b)
        if 'instances_ids' not in s.gt_instances:
            raise KeyError(
                'SoCo needs gt_instances.instances_ids (box correspondence '
                'across views): pack the views with PackViewInputs')
        ids.append(torch.as_tensor(s.gt_instances.instances_ids,
                                   device=b.device))
    return boxes, ids


def match_boxes(ids_a: List[Tensor], ids_b: List[Tensor]
                ) -> Tuple[Tensor, Tensor]:
    """Indices into the flattened boxes of two views that are the same
    object (same image, same id)."""
    idx_a, idx_b = [], []
    off_a = off_b = 0
    for a, b in zip(ids_a, ids_b):
        eq = a[:, None] == b[None, :]  # (n_a, n_b)
        ia, ib = eq.nonzero(as_tuple=True)
        idx_a.append(ia + off_a)
        idx_b.append(ib + off_b)
        off_a += a.numel()
        off_b += b.numel()
    return torch.cat(idx_a), torch.cat(idx_b)


@MODELS.register_module()
class SoCo(BaseSelfSupDetector):
    """Selective Object COntrastive learning.

    Views (``SoCoViews``): V1 whole image, V2 / V3 random crops, with the
    same proposals (``instances_ids``) in each. Every view goes through
    backbone + FPN; each box is RoI-aligned (7x7, aligned) on the FPN level
    its size selects (``MultiLevelRoIPooler(mode='size')``), embedded by the
    4conv1fc head and projected; the online predictor regresses the target
    network's projection of the same box in the other view (BYOL 2-2cos),
    symmetric over V1<->V2 and V1<->V3.

    Args:
        backbone, neck: ResNet and FPN configs.
        roi_pooler (dict): :class:`MultiLevelRoIPooler` (mode 'size').
        box_embedder (dict): :class:`ConvFCBoxEmbedder` (4 convs, 1 FC).
        projector (dict): :class:`MLPProjector` (1024-4096-256, BN).
        head (dict): :class:`BYOLHead` with the predictor.
        momentum / end_momentum (float): target EMA, mmengine convention
            (SoCo: tau 0.99 -> 1 is 0.01 -> 0).
        views (Sequence[str]): V1, V2, V3 names.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 roi_pooler: ConfigType,
                 box_embedder: ConfigType,
                 projector: ConfigType,
                 head: ConfigType,
                 momentum: float = 0.01,
                 end_momentum: float = 0.0,
                 views: Sequence[str] = ('v1', 'v2', 'v3'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        if len(self.views) != 3:
            raise ValueError(f'SoCo needs 3 views, got {list(self.views)}')
        self.roi_pooler = MODELS.build(roi_pooler)
        self.box_embedder = MODELS.build(box_embedder)
        self.projector = MODELS.build(projector)
        self.target_net = build_momentum_encoder(
            *self.online_modules, momentum=momentum,
            end_momentum=end_momentum)

    @property
    def online_modules(self) -> Tuple[nn.Module, ...]:
        return (self.backbone, self.neck, self.box_embedder, self.projector)

    def _project(self, modules: Sequence[nn.Module], img: Tensor,
                 boxes: List[Tensor]) -> Tensor:
        backbone, neck, embedder, projector = modules
        feats = neck(backbone(img))
        pooled = self.roi_pooler(feats, boxes_to_rois(boxes))[0]
        return projector(embedder(pooled))  # (R, D)

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        imgs = self.get_views(inputs)
        boxes, ids = zip(*(boxes_and_ids(data_samples[v])
                           for v in self.views))
        online = [self._project(self.online_modules, img, b)
                  for img, b in zip(imgs, boxes)]
        with torch.no_grad():
            self.target_net.update_parameters(
                nn.Sequential(*self.online_modules))
            target_modules = list(self.target_net.module)
            target = [self._project(target_modules, img, b)
                      for img, b in zip(imgs, boxes)]
        losses, cos, pairs = 0., 0., 0
        for other in (1, 2):
            i1, io = match_boxes(ids[0], ids[other])
            if i1.numel() == 0:
                continue
            a = self.head.loss(online[0][i1], target[other][io])
            b = self.head.loss(online[other][io], target[0][i1])
            losses = losses + a['loss_byol'] + b['loss_byol']
            cos = cos + (a['byol_cos'] + b['byol_cos']) / 2
            pairs += 1
        if pairs == 0:
            raise RuntimeError('SoCo: no box of V1 has a partner in V2 or V3 '
                               'in this batch (check SoCoViews)')
        return dict(loss_soco=losses / pairs, byol_cos=cos / pairs,
                    soco_boxes=torch.tensor(float(online[0].size(0))))
