# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo (Wei et al., NeurIPS 2021): object-level BYOL on proposal boxes,
and its end-to-end variant whose proposals come from the target network's
own heat map (METHODS.md §5, our reading)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..roi import boxes_to_rois
from mmselfdet.structures.box_ops import relative_jitter
from ..utils import (build_momentum_encoder, clip_visible,
                     map_boxes_batched, shared_region, view_matrices)
from .base import BaseSelfSupDetector, ViewInputs, ViewSamples
from .soco_crops import (SoCoExtraCrops, parse_extra_crops,
                         parse_heat_warmup, warmup_boxes)


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


def box_pairs(samples: list) -> Optional[List[Tensor]]:
    """Per-image pair tags (n_i,) of ``SoCoViews(box_selection='per_pair')``
    (1: V1-V2, 2: V1-V3), or None when the view has none."""
    if not samples or 'instances_pairs' not in samples[0].gt_instances:
        return None
    return [torch.as_tensor(s.gt_instances.instances_pairs) for s in samples]


def match_boxes(ids_a: List[Tensor], ids_b: List[Tensor],
                keep_a: Optional[List[Tensor]] = None
                ) -> Tuple[Tensor, Tensor]:
    """Indices into the flattened boxes of two views that are the same
    object (same image, same id); every pair of equal ids counts, so a box
    repeated (padding) weighs more. Rows of ``a`` with ``keep_a`` False
    (per image (n_a,) bool) are never matched."""
    idx_a, idx_b = [], []
    off_a = off_b = 0
    for i, (a, b) in enumerate(zip(ids_a, ids_b)):
        eq = a[:, None] == b[None, :]  # (n_a, n_b)
        if keep_a is not None:
            eq &= keep_a[i].to(eq.device)[:, None]
        ia, ib = eq.nonzero(as_tuple=True)
        idx_a.append(ia + off_a)
        idx_b.append(ib + off_b)
        off_a += a.numel()
        off_b += b.numel()
    return torch.cat(idx_a), torch.cat(idx_b)


@MODELS.register_module()
class SoCo(SoCoExtraCrops, BaseSelfSupDetector):
    """Selective Object COntrastive learning, offline or end-to-end.

    Views (``SoCoViews``): V1 whole image, V2 / V3 random crops. Every view
    goes through backbone + FPN; each box is RoI-aligned (7x7, aligned) on
    the FPN level its size selects (``MultiLevelRoIPooler(mode='size')``),
    embedded by the 4conv1fc head and projected; the online predictor
    regresses the target network's projection of the same box in the other
    view (BYOL 2-2cos), symmetric over V1<->V2 and V1<->V3.

    Where the boxes come from:

    * ``proposer=None`` (SoCo): the packed views carry them (selective
      search file or ground truth, ``SoCoViews``), matched across views by
      ``instances_ids``; when V1 carries ``instances_pairs`` (SoCo's
      per-pair selection) a V1 box is matched only with the view of its
      pair.
    * ``proposer=dict(type='HeatMapProposer', ...)`` (end-to-end variant):
      the views carry no box (``SoCoViews(box_source='none')``); each
      iteration the heat map of the target backbone's stage ``heat_stage``
      on V1 (no grad; the same forward the target projections use, so no
      extra backbone pass) gives K boxes in V1 (:class:`HeatMapProposer`),
      drawn inside the part of V1 that V2 and V3 both see when
      ``restrict_to_views``. They are mapped into V2 / V3 through the
      packed homographies; a box whose visible part in a view is below
      ``min_visible`` of its area is left out of that view's pair. V1's
      copies get SoCo's jitter (``jitter=dict(prob, ratio)``).
      ``extra_crops=dict(num_crops, size, scale, weight)`` adds the
      "multiple cropping": ``num_crops`` square crops of each V1 box
      (enlarged by a factor in ``scale``, flipped at random) whose online
      embedding predicts the target V1 embedding of the box, as the extra
      loss ``loss_soco_crops``. With ``source='raw'`` (default) a crop is
      cut from the un-augmented raw view (``SoCoViews(raw_view='raw')``)
      at the V1 box mapped through ``H_raw @ inv(H_v1)`` and gets its own
      photometric augmentation (``augs``, SoCo's V2 augmentation, drawn
      per crop on the device), so it never shares V1's colours; with
      ``source='v1'`` **[ours, earlier]** it is resampled from the
      augmented V1 tensor (same colours as the target's V1).

    Heat options **[ours]** (no reference): ``heat_network='target'``
    (default) or ``'online'`` (the online backbone's V1 features, no grad;
    the same forward as the online V1 embeddings). ``heat_warmup=dict(
    iters, mode)``: for the first ``iters`` loss calls (counted in the
    ``heat_step`` buffer, saved with the checkpoint) the heat is not used:
    ``mode='whole'`` takes one box per image, the part of V1 that V2 and
    V3 both see (image-level BYOL through RoI pooling), ``'random'`` takes
    K random boxes inside that part as SoCo's ``random_generate_props``
    (sqrt-area ratio in ``area_ratio_range`` of the part, aspect uniform in
    ``aspect_range``); ``heat_warmup`` is logged (1 during the warm-up).

    Args:
        backbone, neck: ResNet and FPN configs.
        roi_pooler (dict): :class:`MultiLevelRoIPooler` (mode 'size').
        box_embedder (dict): :class:`ConvFCBoxEmbedder` (4 convs, 1 FC).
        projector (dict): :class:`MLPProjector` (1024-4096-256, BN).
        head (dict): :class:`BYOLHead` with the predictor.
        momentum / end_momentum (float): target EMA, mmengine convention
            (SoCo: tau 0.99 -> 1 is 0.01 -> 0).
        views (Sequence[str]): V1, V2, V3 names.
        proposer (dict, optional): :class:`HeatMapProposer` config for the
            end-to-end variant. Defaults to None.
        heat_stage (int): Backbone output (index into its ``out_indices``
            outputs) the heat map is computed from; -1 is C5. Defaults to -1.
        restrict_to_views (bool): Draw centers only where V2 and V3 both
            see V1. Defaults to True.
        min_visible (float): Visible fraction a mapped box needs in V2 / V3.
            Defaults to 0.5.
        jitter (dict, optional): ``prob`` and ``ratio`` of the V1 box
            jitter (SoCo: 0.5, 0.1); None switches it off.
        heat_network (str): 'target' or 'online'. Defaults to 'target'.
        heat_warmup (dict, optional): ``iters`` (int), ``mode`` ('whole'
            or 'random'), ``area_ratio_range`` ((0.3, 0.8)),
            ``aspect_range`` ((1/3, 3)). Defaults to None (heat boxes from
            the first step).
        extra_crops (dict, optional): ``num_crops`` (int), ``size`` (int),
            ``scale`` ((lo, hi) enlargement, >= 1), ``weight`` (float),
            ``flip_prob`` (float), ``source`` ('raw' or 'v1'), ``raw_view``
            (name of the raw view, 'raw'), ``augs`` (dict of
            :data:`~mmselfdet.models.utils.photometric.SOCO_V2_AUGS` keys,
            None for no augmentation; 'raw' only). Defaults to None (no
            extra crops).
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
                 proposer: OptConfigType = None,
                 heat_stage: int = -1,
                 restrict_to_views: bool = True,
                 min_visible: float = 0.5,
                 jitter: Optional[dict] = dict(prob=0.5, ratio=0.1),
                 heat_network: str = 'target',
                 heat_warmup: Optional[dict] = None,
                 extra_crops: Optional[dict] = None,
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
        self.proposer = None if proposer is None else MODELS.build(proposer)
        if proposer is None and extra_crops is not None:
            raise ValueError('SoCo: extra_crops needs a proposer (the '
                             'end-to-end variant)')
        if not 0 < min_visible <= 1:
            raise ValueError(f'SoCo: min_visible must be in (0, 1], got '
                             f'{min_visible}')
        self.heat_stage = int(heat_stage)
        self.restrict_to_views = bool(restrict_to_views)
        self.min_visible = float(min_visible)
        self.jitter = None if jitter is None else dict(
            prob=float(jitter.get('prob', 0.5)),
            ratio=float(jitter.get('ratio', 0.1)))
        self.extra_crops = parse_extra_crops(extra_crops)
        if heat_network not in ('target', 'online'):
            raise ValueError(f"SoCo: heat_network must be 'target' or "
                             f"'online', got {heat_network!r}")
        self.heat_network = heat_network
        self.heat_warmup = parse_heat_warmup(heat_warmup)
        if self.heat_warmup is not None:
            self.register_buffer('heat_step', torch.zeros((),
                                                          dtype=torch.long))

    @property
    def online_modules(self) -> Tuple[nn.Module, ...]:
        return (self.backbone, self.neck, self.box_embedder, self.projector)

    @staticmethod
    def _features(modules: Sequence[nn.Module], img: Tensor
                  ) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        """(backbone outputs, FPN outputs)."""
        outs = modules[0](img)
        return outs, modules[1](outs)

    def _embed(self, modules: Sequence[nn.Module], feats: Sequence[Tensor],
               rois: Tensor) -> Tensor:
        pooled = self.roi_pooler(feats, rois)[0]
        return modules[3](modules[2](pooled))  # (R, D)

    def _propose(self, imgs: Sequence[Tensor], samples: Sequence[list],
                 heat_feat: Tensor
                 ) -> Tuple[List[List[Tensor]], List[List[Tensor]],
                            Dict[str, Tensor]]:
        """Heat-map boxes in V1, mapped into V2 and V3 (end-to-end)."""
        device = imgs[0].device
        sizes = [(img.shape[-1], img.shape[-2]) for img in imgs]
        mats = [view_matrices(s, device) for s in samples]
        region = shared = None
        if self.restrict_to_views or self.heat_warmup is not None:
            shared = shared_region(mats[0], mats[1:], sizes[1:], sizes[0])
            region = shared if self.restrict_to_views else None
        if self.heat_warmup is not None and \
                int(self.heat_step) < self.heat_warmup['iters']:
            boxes = warmup_boxes(shared, self.heat_warmup,
                                 self.proposer.num_boxes)
            valid = torch.ones(boxes.shape[:2], dtype=torch.bool,
                               device=device)
            stats = dict(heat_warmup=torch.ones((), device=device))
        else:
            boxes, valid, stats = self.proposer(heat_feat, sizes[0], region)
            if self.heat_warmup is not None:
                stats = dict(stats, heat_warmup=torch.zeros((),
                                                            device=device))
        num, k = valid.shape
        per_view = [boxes]
        valid_views = [valid]
        for mat, size in zip(mats[1:], sizes[1:]):
            mapped = map_boxes_batched(boxes,
                                       mat @ torch.linalg.inv(mats[0]))
            clipped, vis = clip_visible(mapped, size, self.min_visible)
            per_view.append(clipped)
            valid_views.append(valid & vis)
        if self.jitter is not None:
            flat = boxes.reshape(-1, 4)
            moved = relative_jitter(flat, sizes[0], self.jitter['ratio'])
            apply = torch.rand(flat.size(0), device=device) < \
                self.jitter['prob']
            per_view[0] = torch.where(apply[:, None], moved,
                                      flat).view(num, k, 4)
        slots = torch.arange(k, device=device)
        out_boxes, out_ids = [], []
        for view_boxes, view_valid in zip(per_view, valid_views):
            out_boxes.append([view_boxes[i][view_valid[i]]
                              for i in range(num)])
            out_ids.append([slots[view_valid[i]] for i in range(num)])
        stats = dict(stats)
        for name, view_valid in zip(self.views[1:], valid_views[1:]):
            stats[f'heat_visible_{name}'] = (
                view_valid.sum().float() / valid.sum().clamp(min=1).float())
        return out_boxes, out_ids, stats

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        imgs = self.get_views(inputs)
        samples = [data_samples[v] for v in self.views]
        with torch.no_grad():
            self.target_net.update_parameters(
                nn.Sequential(*self.online_modules))
            target_modules = list(self.target_net.module)
            target_feats = [self._features(target_modules, img)
                            for img in imgs]
        extra: Dict[str, Tensor] = {}
        tags = None
        online_v1 = None
        if self.proposer is None:
            boxes, ids = zip(*(boxes_and_ids(s) for s in samples))
            tags = box_pairs(samples[0])
        else:
            heat_feat = target_feats[0][0][self.heat_stage]
            if self.heat_network == 'online':
                online_v1 = self._features(self.online_modules, imgs[0])
                heat_feat = online_v1[0][self.heat_stage].detach()
            with torch.no_grad():
                boxes, ids, extra = self._propose(imgs, samples, heat_feat)
            if self.heat_warmup is not None:
                self.heat_step += 1
        rois = [boxes_to_rois(b) for b in boxes]
        online = [self._embed(
            self.online_modules,
            (online_v1 if i == 0 and online_v1 is not None else
             self._features(self.online_modules, img))[1], r)
            for i, (img, r) in enumerate(zip(imgs, rois))]
        with torch.no_grad():
            target = [self._embed(target_modules, feats[1], r)
                      for feats, r in zip(target_feats, rois)]
        losses, cos, pairs = 0., 0., 0
        for other in (1, 2):
            # per-pair boxes: a V1 copy pairs only with its own view
            keep = None if tags is None else [t == other for t in tags]
            i1, io = match_boxes(ids[0], ids[other], keep)
            if i1.numel() == 0:
                continue
            a = self.head.loss(online[0][i1], target[other][io])
            b = self.head.loss(online[other][io], target[0][i1])
            losses = losses + a['loss_byol'] + b['loss_byol']
            cos = cos + (a['byol_cos'] + b['byol_cos']) / 2
            pairs += 1
        if pairs == 0 and self.proposer is None:
            raise RuntimeError('SoCo: no box of V1 has a partner in V2 or V3 '
                               'in this batch (check SoCoViews)')
        if pairs == 0:
            # end-to-end: no heat box visible in V2 / V3 anywhere in the
            # batch (rare with restrict_to_views); a zero loss keeps every
            # parameter in the graph and the step is logged as such
            losses = online[0].sum() * 0.0
            cos, pairs = online[0].new_zeros(()), 1
        out = dict(loss_soco=losses / pairs, byol_cos=cos / pairs,
                   soco_boxes=torch.tensor(float(online[0].size(0))))
        if self.extra_crops is not None:
            out.update(self._crop_loss(inputs, data_samples, boxes[0],
                                       target[0]))
        out.update(extra)
        return out
