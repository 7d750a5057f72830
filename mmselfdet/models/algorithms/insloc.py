# Copyright (c) mmselfdet contributors. All rights reserved.
"""InsLoc: instance localization (Yang et al., CVPR 2021)."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmselfdet.registry import MODELS
from mmselfdet.structures.box_ops import (ANCHOR_RATIOS, ANCHOR_SIZES,
                                          anchor_jitter)
from ..utils import (BoxEncoder, FeatureQueue, momentum_copy, momentum_keys,
                     start_host_copy)
from .base import BaseSelfSupervisor, ViewInputs, ViewSamples


def view_boxes(samples: list, view: str) -> Tensor:
    """One box per image -> (N, 4); a clear error otherwise."""
    boxes = []
    for s in samples:
        b = get_box_tensor(s.gt_instances.bboxes)
        if b.size(0) != 1:
            raise ValueError(
                f'InsLoc expects exactly one box per {view} view (the pasted '
                f'instance), got {b.size(0)} for {s.metainfo.get("img_path")}')
        boxes.append(b)
    return torch.cat(boxes, dim=0)  # (N, 4)


# the official InsLoc jitter (see ``anchor_jitter``); a config's
# ``jitter_cfg`` overrides single keys
JITTER_DEFAULTS = dict(stride=16, sizes=ANCHOR_SIZES, ratios=ANCHOR_RATIOS,
                       iou_thr=0.5, center_offset=0.0, nms_thr=0.7,
                       clip_anchors=False, fallback='top_iou',
                       fallback_topk=4000)


@MODELS.register_module()
class InsLoc(BaseSelfSupervisor):
    """Predict instance identity from RoI features of the pasted box.

    Query and key views are two composites of the same foreground on
    different backgrounds (:class:`InstanceComposite`). The box of each view
    is RoI-aligned on every feature level (``roi_pooler.mode='all'``), one
    embedder shared by all levels maps it to an L2-normalised embedding, and
    every level has its own InfoNCE loss and queue. On the levels listed in
    ``jitter_levels`` the query box is replaced by a random anchor that
    overlaps it (:func:`anchor_jitter` with ``jitter_cfg``; by default the
    official rule: stride-16 anchors, IoU > 0.5, NMS(0.7) on random scores,
    one survivor at random). The official FPN config jitters P5 only.

    The FPN variant uses ``neck=FPN``; the C4 variant uses ``neck=None``, a
    C4 backbone output, a stride-16 pooler and :class:`ResLayerBoxEmbedder`
    (its config jitters the one C4 level, the jitter grid's own stride).

    The online parts are this model's ``backbone``, ``neck``,
    ``roi_pooler`` and ``box_embedder`` (seen together as
    :attr:`online_encoder`); the key encoder ``momentum_encoder`` is an EMA
    of a :class:`BoxEncoder` with the same part names.

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): FPN config; None for C4.
        roi_pooler (dict): :class:`MultiLevelRoIPooler` config (mode 'all').
        box_embedder (dict): Box embedder config (shared by all levels).
        head (dict): :class:`QueueContrastiveHead` config.
        queue_len (int): Keys per level queue. Defaults to 65536.
        feat_dim (int): Embedding dim. Defaults to 128.
        momentum (float): mmengine EMA momentum (0.001 == m=0.999).
        jitter_levels (Sequence[int]): Level indices whose query box is
            jittered. Defaults to (3, ) (P5 of P2-P5).
        jitter_cfg (dict, optional): Keys of :func:`anchor_jitter`
            (``stride``, ``sizes``, ``ratios``, ``iou_thr``,
            ``center_offset``, ``nms_thr``, ``clip_anchors``, ``fallback``,
            ``fallback_topk``) that replace those of ``JITTER_DEFAULTS``.
        level_weights (Sequence[float], optional): Loss weight per level;
            default 1.0 each.
        shuffle_bn (bool): Shuffle-BN for the key encoder. Defaults to True.
        views (Sequence[str]): Query and key view names.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType,
                 roi_pooler: ConfigType,
                 box_embedder: ConfigType,
                 head: ConfigType,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 jitter_levels: Sequence[int] = (3, ),
                 jitter_cfg: Optional[dict] = None,
                 level_weights: Optional[Sequence[float]] = None,
                 shuffle_bn: bool = True,
                 views: Sequence[str] = ('query', 'key'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor, views=views,
                         init_cfg=init_cfg)
        self.roi_pooler = MODELS.build(roi_pooler)
        self.box_embedder = MODELS.build(box_embedder)
        n = self.roi_pooler.num_levels
        bad = [lvl for lvl in jitter_levels if not 0 <= lvl < n]
        if bad:
            raise ValueError(f'jitter_levels {list(jitter_levels)} outside '
                             f'the {n} pooled levels')
        self.jitter_levels = tuple(jitter_levels)
        unknown = sorted(set(jitter_cfg or {}) - set(JITTER_DEFAULTS))
        if unknown:
            raise ValueError(f'InsLoc jitter_cfg: unknown keys {unknown}; '
                             f'known: {sorted(JITTER_DEFAULTS)}')
        self.jitter_cfg = {**JITTER_DEFAULTS, **(jitter_cfg or {})}
        self.level_weights = list(level_weights or [1.0] * n)
        if len(self.level_weights) != n:
            raise ValueError(f'{len(self.level_weights)} level_weights for '
                             f'{n} levels')
        self.momentum_encoder = momentum_copy(self.online_encoder,
                                              momentum=momentum)
        self.queue = FeatureQueue(queue_len, feat_dim, num_queues=n)
        self.shuffle_bn = shuffle_bn

    @property
    def online_encoder(self) -> BoxEncoder:
        """The online parts as a :class:`BoxEncoder` (no copy)."""
        return BoxEncoder.from_parts(self)

    def _jitter(self, boxes: Tensor,
                img_shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Anchor-sampling jitter of host ``boxes`` on the CPU (a few
        thousand anchors and one small NMS per box; torch's CPU RNG,
        seeded by mmengine); returns the boxes and the fraction that had
        no anchor above ``iou_thr``, on the CPU."""
        h, w = img_shape
        out, fallback = anchor_jitter(boxes.detach().cpu(), (w, h),
                                      **self.jitter_cfg)
        return out, fallback.float().mean()  # (N, 4), ()

    def loss(self, inputs: ViewInputs,
             data_samples: ViewSamples) -> Dict[str, Tensor]:
        img_q, img_k = self.get_views(inputs)  # (N, 3, H, W) each
        q_view, k_view = self.views
        box_q = view_boxes(data_samples[q_view], q_view)  # (N, 4)
        box_k = view_boxes(data_samples[k_view], k_view)  # (N, 4)

        # the jitter runs on the host: the copy of the query boxes is
        # queued before the query forward, so the host waits for that copy
        # only and jitters while the device runs the forward
        host_box_q = start_host_copy(box_q) if self.jitter_levels else None

        online = self.online_encoder
        feats_q = online.features(img_q).pyramid
        pooled = self.roi_pooler(feats_q, bbox2roi(box_q.split(1)))
        jitter_stats = {}
        if self.jitter_levels:
            jit_box, fallback = self._jitter(host_box_q(), img_q.shape[-2:])
            jitter_stats['jitter_fallback'] = fallback.to(box_q.device)
            jit = bbox2roi(jit_box.to(box_q.device).split(1))
            for lvl in self.jitter_levels:
                pooled[lvl] = self.roi_pooler.roi_layers[lvl](
                    feats_q[lvl], jit.to(feats_q[lvl].dtype))  # (N, C, S, S)
        queries = online.embed_pooled(pooled)  # L x (N, D)
        keys = momentum_keys(
            self.momentum_encoder, img_k, box_k, online=online,
            encode=lambda enc, img, box: enc(img, bbox2roi(box.split(1))),
            shuffle_bn=self.shuffle_bn)  # L x (N, D)

        losses: Dict[str, Tensor] = {}
        for lvl, (q, k) in enumerate(zip(queries, keys)):
            losses.update(self.head.loss(
                q, k, self.queue.get(lvl), weight=self.level_weights[lvl],
                prefix=f'lvl{lvl}_'))
        for lvl, k in enumerate(keys):
            self.queue.enqueue(k, index=lvl)
        losses.update(jitter_stats)
        return losses
