# Copyright (c) mmselfdet contributors. All rights reserved.
"""Proposal filters (clip, degenerate, size, aspect, area ratio, NMS, top
k), applied by the generators and at load time by
:class:`~mmselfdet.datasets.UnlabeledDataset` (``proposal_filter``)."""
from __future__ import annotations

import inspect
from typing import Dict, Optional, Tuple

import numpy as np

from mmselfdet.structures.box_ops import box_shape_masks

from .format import as_boxes, rank_scores

__all__ = ['FILTER_KEYS', 'FILTER_ARGS', 'filter_proposals']

#: Statistics keys of :func:`filter_proposals`, in the order of its steps.
FILTER_KEYS = ('degenerate', 'min_size', 'aspect', 'area_ratio', 'nms', 'topk')


def filter_proposals(
    bboxes: np.ndarray,
    scores: Optional[np.ndarray],
    img_wh: Tuple[float, float],
    min_size: Optional[float] = 32,
    aspect_range: Optional[Tuple[float, float]] = (1 / 3, 3),
    area_ratio_range: Optional[Tuple[float, float]] = (0.3, 0.8),
    topk: Optional[int] = None,
    nms_iou: Optional[float] = None,
) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
    """Clip and filter proposals; the defaults are SoCo's filters.

    Steps, in order (``None`` switches a step off):

    1. sort by descending score (stable) and clip to ``[0, w] x [0, h]``;
    2. ``degenerate``: drop boxes with non-finite numbers or zero / negative
       width or height after clipping;
    3. ``min_size``: drop boxes whose width **or** height is below it;
    4. ``aspect``: drop boxes whose ``w / h`` is outside ``aspect_range``
       (inclusive);
    5. ``area_ratio``: drop boxes whose ``sqrt(box area / image area)`` is
       outside ``area_ratio_range`` (inclusive);
    6. ``nms``: non-maximum suppression at IoU ``nms_iou``
       (``mmcv.ops.nms``, works on CPU);
    7. ``topk``: keep the ``topk`` best.

    Args:
        bboxes: (N, 4) x1y1x2y2 boxes in pixels.
        scores: (N,) scores; ``None`` gives :func:`rank_scores` of the
            input order.
        img_wh: Image ``(width, height)``.
        min_size: Smallest width and height in pixels. Defaults to 32.
        aspect_range: ``(lo, hi)`` of ``w / h``. Defaults to (1/3, 3).
        area_ratio_range: ``(lo, hi)`` of ``sqrt(box area / image area)``.
            Defaults to (0.3, 0.8).
        topk: Number of boxes kept at most. Defaults to None.
        nms_iou: NMS IoU threshold. Defaults to None.

    Returns:
        tuple: ``(bboxes float32 (M, 4), scores float32 (M,), stats)``;
        ``stats`` has ``input``, ``clipped`` (boxes changed by clipping, not
        dropped), one count of dropped boxes per step (:data:`FILTER_KEYS`)
        and ``kept``.
    """
    w_img, h_img = float(img_wh[0]), float(img_wh[1])
    if not (w_img > 0 and h_img > 0):
        raise ValueError(f'filter_proposals: image size must be positive, got '
                         f'{tuple(img_wh)}')
    boxes = as_boxes(bboxes)
    if scores is None:
        sc = rank_scores(len(boxes)).astype(np.float64)
    else:
        sc = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(sc) != len(boxes):
            raise ValueError(f'filter_proposals: {len(boxes)} boxes but '
                             f'{len(sc)} scores')
    stats = dict(input=len(boxes), clipped=0)
    stats.update({k: 0 for k in FILTER_KEYS})

    order = np.argsort(-np.nan_to_num(sc, nan=-np.inf), kind='stable')
    boxes, sc = boxes[order], sc[order]
    clipped = boxes.copy()
    np.clip(clipped[:, 0::2], 0.0, w_img, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0.0, h_img, out=clipped[:, 1::2])
    finite = np.isfinite(boxes).all(1) & np.isfinite(sc)
    stats['clipped'] = int((finite & (clipped != boxes).any(1)).sum())
    boxes = clipped

    def keep(mask: np.ndarray, key: str) -> None:
        nonlocal boxes, sc
        stats[key] = int((~mask).sum())
        boxes, sc = boxes[mask], sc[mask]

    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep(finite & (bw > 0) & (bh > 0), 'degenerate')
    alive = np.ones(len(boxes), bool)
    for key, mask in box_shape_masks(boxes, (w_img, h_img), min_size,
                                     aspect_range,
                                     area_ratio_range).items():
        stats[key] = int((alive & ~mask).sum())
        alive &= mask
    boxes, sc = boxes[alive], sc[alive]
    if nms_iou is not None and len(boxes) > 1:
        from mmcv.ops import nms
        _, inds = nms(boxes.astype(np.float32), sc.astype(np.float32),
                      float(nms_iou))
        mask = np.zeros(len(boxes), bool)
        mask[np.asarray(inds, dtype=np.int64)] = True
        keep(mask, 'nms')
    if topk is not None:
        mask = np.arange(len(boxes)) < int(topk)
        keep(mask, 'topk')
    stats['kept'] = len(boxes)
    return (boxes.astype(np.float32).reshape(-1, 4), sc.astype(np.float32),
            stats)


#: Keyword arguments :func:`filter_proposals` accepts besides its data.
FILTER_ARGS = tuple(
    p for p in inspect.signature(filter_proposals).parameters
    if p not in ('bboxes', 'scores', 'img_wh'))
