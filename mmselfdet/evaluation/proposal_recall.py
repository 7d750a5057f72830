# Copyright (c) mmselfdet contributors. All rights reserved.
"""Average recall (AR) of object proposals against COCO ground truth.

Matching follows the usual proposal-recall protocol: in each image, the
(proposal, ground truth) pair with the highest IoU is matched first, both
are removed, and so on, so every ground-truth box is matched at most once
and every proposal covers at most one box. A box counts as recalled at an
IoU threshold when its matched IoU reaches it. Recall is taken over all
ground-truth boxes of the data set (``iscrowd`` boxes are ignored), averaged
over the IoU thresholds (0.5:0.05:0.95) to give AR, for each number of
proposals per image (the best ``k`` by score).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Union

import numpy as np

__all__ = ['average_recall', 'box_iou', 'match_recall']

DEFAULT_IOU_THRS = np.arange(0.5, 0.96, 0.05)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of two sets of x1y1x2y2 boxes (mmdet's convention, no +1).

    Args:
        a: (N, 4) boxes.
        b: (M, 4) boxes.

    Returns:
        np.ndarray: (N, M) float64 IoU; 0 where the union is empty.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1],
                                                           0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1],
                                                           0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_recall(proposals: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Best one-to-one IoU of each ground-truth box (greedy by IoU).

    Args:
        proposals: (N, 4) x1y1x2y2 proposals.
        gts: (G, 4) x1y1x2y2 ground-truth boxes.

    Returns:
        np.ndarray: (G,) the IoU each ground-truth box was matched with
        (0 if it was left unmatched).
    """
    gts = np.asarray(gts, np.float64).reshape(-1, 4)
    matched = np.zeros(len(gts))
    if len(gts) == 0 or len(proposals) == 0:
        return matched
    ious = box_iou(proposals, gts)
    for _ in range(min(ious.shape)):
        k = int(np.argmax(ious))
        p, g = divmod(k, ious.shape[1])
        if ious[p, g] <= 0:
            break
        matched[g] = ious[p, g]
        ious[p, :] = -1
        ious[:, g] = -1
    return matched


def _load_gt(coco_gt: Any) -> Dict[int, np.ndarray]:
    """Ground-truth x1y1x2y2 boxes per image id from a path, dict or COCO."""
    if isinstance(coco_gt, str):
        import json
        with open(coco_gt, encoding='utf-8') as f:
            coco_gt = json.load(f)
    if hasattr(coco_gt, 'dataset'):  # pycocotools.coco.COCO
        coco_gt = coco_gt.dataset
    boxes: Dict[int, list] = {im['id']: [] for im in coco_gt['images']}
    for ann in coco_gt.get('annotations', []):
        if ann.get('iscrowd', 0):
            continue
        x, y, w, h = ann['bbox']
        if w > 0 and h > 0 and ann['image_id'] in boxes:
            boxes[ann['image_id']].append([x, y, x + w, y + h])
    return {k: np.asarray(v, np.float64).reshape(-1, 4)
            for k, v in boxes.items()}


def average_recall(
        proposals_by_image: Mapping[Any, Union[np.ndarray, Mapping[str, Any]]],
        coco_gt: Any,
        max_dets: Sequence[int] = (10, 100, 1000),
        iou_thrs: Sequence[float] = DEFAULT_IOU_THRS) -> Dict[str, Any]:
    """COCO-style average recall of proposals.

    Args:
        proposals_by_image: Image id -> proposals, either an (N, 4) x1y1x2y2
            array in rank order or a dict with ``bboxes`` (and optionally
            ``scores``, then sorted by descending score), e.g. the table of
            :func:`mmselfdet.datasets.proposals.load_proposal_file`. Images
            of the ground truth without an entry have no proposals.
        coco_gt: COCO json path, its loaded dict, or a
            ``pycocotools.coco.COCO``.
        max_dets: Numbers of proposals per image to evaluate.
        iou_thrs: IoU thresholds averaged into AR.

    Returns:
        dict: ``AR@k`` for each ``k`` in ``max_dets``; ``recall@k``: the
        recall at each threshold (list, in ``iou_thrs`` order);
        ``iou_thrs``; ``num_images``, ``num_gts``, ``mean_proposals``
        (over the ground-truth images, before the ``max_dets`` cut) and
        ``images_without_proposals``.
    """
    gt = _load_gt(coco_gt)
    thrs = np.asarray(iou_thrs, np.float64)
    # np.arange gives e.g. 0.7000000000000002: an IoU of 0.7 must reach it
    thrs_cmp = thrs - 1e-12
    matched = {k: [] for k in max_dets}
    n_props, no_props = [], 0
    for img_id, gts in gt.items():
        entry = proposals_by_image.get(img_id)
        if entry is None:
            boxes = np.zeros((0, 4))
        elif isinstance(entry, Mapping):
            boxes = np.asarray(entry['bboxes'], np.float64).reshape(-1, 4)
            if entry.get('scores') is not None and len(boxes):
                order = np.argsort(-np.asarray(entry['scores'], np.float64),
                                   kind='stable')
                boxes = boxes[order]
        else:
            boxes = np.asarray(entry, np.float64).reshape(-1, 4)
        n_props.append(len(boxes))
        no_props += len(boxes) == 0
        for k in max_dets:
            matched[k].append(match_recall(boxes[:k], gts))
    num_gts = int(sum(len(g) for g in gt.values()))
    result: Dict[str, Any] = {}
    for k in max_dets:
        ious = np.concatenate(matched[k]) if matched[k] else np.zeros(0)
        if num_gts:
            rec = (ious[:, None] >= thrs_cmp[None, :]).sum(0) / num_gts
        else:
            rec = np.zeros(len(thrs))
        result[f'AR@{k}'] = float(rec.mean()) if len(rec) else 0.0
        result[f'recall@{k}'] = [float(r) for r in rec]
    result.update(
        iou_thrs=[round(float(t), 4) for t in thrs],
        num_images=len(gt),
        num_gts=num_gts,
        mean_proposals=float(np.mean(n_props)) if n_props else 0.0,
        images_without_proposals=int(no_props))
    return result
