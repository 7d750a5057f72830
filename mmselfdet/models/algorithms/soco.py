# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo (Wei et al., NeurIPS 2021): object-level BYOL on proposal boxes,
and its end-to-end variant whose proposals come from the network's own
heat map (docs/methods.md §5, our reading)."""
from typing import Dict, Optional, Sequence

import torch
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from ..heads.soco_crops import build_crop_head
from ..utils import BoxEncoder, momentum_copy
from ..utils.photometric import cutout_in_boxes, parse_cutout
from .base import BaseSelfSupervisor, ViewInputs, ViewSamples
from .soco_boxes import HeatMapBoxSource, ViewBoxSource, match_boxes

# options of the end-to-end variant (HeatMapBoxSource's, and the crops)
HEAT_KEYS = ('heat_stage', 'restrict_to_views', 'min_visible', 'jitter',
             'heat_network', 'heat_warmup')


@MODELS.register_module()
class SoCo(BaseSelfSupervisor):
    """Selective Object COntrastive learning, offline or end-to-end.

    Views (``SoCoViews``): V1 whole image, V2 / V3 random crops. Every view
    goes through backbone + FPN; each box is RoI-aligned (7x7, aligned) on
    the FPN level its size selects (``MultiLevelRoIPooler(mode='size')``),
    embedded by the 4conv1fc head and projected (the online
    :class:`BoxEncoder`; the target network is an EMA of one); the online
    predictor regresses the target's projection of the same box in the
    other view (BYOL 2-2cos), symmetric over V1<->V2 and V1<->V3.

    The boxes come from a box source (``soco_boxes.py``):
    :class:`ViewBoxSource` when ``proposer=None`` (SoCo: the packed views
    carry them), :class:`HeatMapBoxSource` when ``proposer=dict(type=
    'HeatMapProposer', ...)`` (end-to-end: the heat map of V1, mapped into
    V2 / V3 through the homographies), built from this model's keys
    ``heat_stage``, ``restrict_to_views``, ``min_visible``, ``jitter``,
    ``heat_network`` and ``heat_warmup`` (see there). ``extra_crops=dict(
    ...)`` adds the end-to-end "multiple cropping" loss
    ``loss_soco_crops`` (:class:`SoCoCropHead`). ``cutout=dict(prob,
    ratio)`` is SoCo's V2 / V3 cutout in box, applied on the device to V2
    and V3 once their heat-map boxes are known (:func:`cutout_in_boxes`;
    SoCo proper cuts in the pipeline, ``RandomCutoutInBoxes``). These keys
    only apply to the end-to-end variant: given without a proposer they
    raise, naming the key. The warm-up step count is the ``heat_step`` buffer (saved
    with the checkpoint).

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
        extra_crops (dict, optional): :class:`SoCoCropHead` keys. Defaults
            to None (no extra crops).
        cutout (dict, optional): :func:`cutout_in_boxes` keys (``prob``,
            ``ratio``, ``placement``, ``fill``). Defaults to None (off).
        **heat_options: :class:`HeatMapBoxSource` keys (``HEAT_KEYS``).
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
                 extra_crops: Optional[dict] = None,
                 cutout: Optional[dict] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **heat_options) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        if len(self.views) != 3:
            raise ValueError(f'SoCo needs 3 views, got {list(self.views)}')
        unknown = sorted(set(heat_options) - set(HEAT_KEYS))
        if unknown:
            raise TypeError(f'SoCo: unknown keys {unknown}')
        given = sorted(heat_options) + [
            k for k, v in (('extra_crops', extra_crops), ('cutout', cutout))
            if v is not None]
        if proposer is None and given:
            raise ValueError(
                f"SoCo: {', '.join(given)} needs a proposer (the end-to-end "
                "variant, proposer=dict(type='HeatMapProposer', ...)); "
                'boxes from the views take none of these keys')
        self.roi_pooler = MODELS.build(roi_pooler)
        self.box_embedder = MODELS.build(box_embedder)
        self.projector = MODELS.build(projector)
        self.target_net = momentum_copy(self.online_encoder, momentum,
                                        end_momentum)
        self.box_source = ViewBoxSource() if proposer is None else \
            HeatMapBoxSource(proposer, self.views, **heat_options)
        self.crop_head = build_crop_head(extra_crops)
        self.cutout = parse_cutout(cutout)
        if getattr(self.box_source, 'heat_warmup', None) is not None:
            self.register_buffer('heat_step', torch.zeros((),
                                                          dtype=torch.long))

    @property
    def online_encoder(self) -> BoxEncoder:
        """The online parts as a :class:`BoxEncoder` (no copy)."""
        return BoxEncoder.from_parts(self)

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        imgs = self.get_views(inputs)
        samples = [data_samples[v] for v in self.views]
        online, target = self.online_encoder, self.target_net.module
        with torch.no_grad():
            self.target_net.update_parameters(online)
            target_feats = [target.features(imgs[0])]
        online_feats = [None] * len(imgs)
        heat_net = self.box_source.heat_network
        if heat_net == 'online':  # the online V1 forward, reused below
            online_feats[0] = online.features(imgs[0])
        heat = None if heat_net is None else (
            online_feats if heat_net == 'online' else target_feats)[0].backbone
        step = int(self.heat_step) if 'heat_step' in self._buffers else None
        boxes = self.box_source(imgs, samples, heat, step)
        if step is not None:
            self.heat_step += 1
        if self.cutout is not None:  # V2 / V3, before any of their forwards
            imgs = imgs[:1] + tuple(cutout_in_boxes(img, b, **self.cutout)
                                    for img, b in zip(imgs[1:],
                                                      boxes.boxes[1:]))
        with torch.no_grad():
            target_feats += [target.features(img) for img in imgs[1:]]
        rois = [bbox2roi(b) for b in boxes.boxes]
        emb = [online.embed((f if f is not None else
                             online.features(img)).pyramid, r)[0]
               for img, f, r in zip(imgs, online_feats, rois)]  # (R_v, D)
        with torch.no_grad():
            tgt = [target.embed(f.pyramid, r)[0]
                   for f, r in zip(target_feats, rois)]  # (R_v, D)
        losses, cos, pairs = 0., 0., 0
        for other in (1, 2):
            # per-pair boxes: a V1 copy pairs only with its own view
            keep = None if boxes.pairs is None else \
                [t == other for t in boxes.pairs]
            i1, io = match_boxes(boxes.ids[0], boxes.ids[other], keep)
            if i1.numel() == 0:
                continue
            a = self.head.loss(emb[0][i1], tgt[other][io])
            b = self.head.loss(emb[other][io], tgt[0][i1])
            losses = losses + a['loss_byol'] + b['loss_byol']
            cos = cos + (a['byol_cos'] + b['byol_cos']) / 2
            pairs += 1
        if pairs == 0 and not self.box_source.allow_no_pairs:
            raise RuntimeError('SoCo: no box of V1 has a partner in V2 or V3 '
                               'in this batch (check SoCoViews)')
        if pairs == 0:
            # end-to-end: no heat box visible in V2 / V3 anywhere in the
            # batch (rare with restrict_to_views); a zero loss keeps every
            # parameter in the graph and the step is logged as such
            losses, cos, pairs = emb[0].sum() * 0.0, emb[0].new_zeros(()), 1
        out = dict(loss_soco=losses / pairs, byol_cos=cos / pairs,
                   soco_boxes=torch.tensor(float(emb[0].size(0))))
        if self.crop_head is not None:
            out.update(self.crop_head.loss(
                online, self.head, inputs, data_samples, self.views[0],
                boxes.boxes[0], tgt[0], self.data_preprocessor))
        out.update(boxes.stats)
        return out
