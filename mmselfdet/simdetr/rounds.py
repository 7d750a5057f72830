# Copyright (c) mmselfdet contributors. All rights reserved.
"""Self-training rounds: from a detector's predictions to the next labels.

:func:`select_predictions` keeps the confident predictions of one image;
:func:`pseudo_labels_from_proposals` turns a stage-A proposal file into
stage B's COCO json; :func:`write_round` writes a round's json. The loops
that run them inside training are
:class:`mmselfdet.simdetr.self_training.SelfTrainingLoop` and
``SelfTrainingEpochLoop``.
"""
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .coco import cluster_class_names, write_coco_json
from .feature_proposals import load_feature_proposals
from .pseudo_labels import cluster_features

__all__ = ['SELECTION_MODES', 'select_predictions',
           'pseudo_labels_from_proposals', 'write_round', 'round_file']


def round_file(work_dir: str, round_idx: int) -> str:
    """Where round ``round_idx``'s labels live: ``work_dir/self_training/
    round_NN.json``."""
    return osp.join(work_dir, 'self_training', f'round_{round_idx:02d}.json')


SELECTION_MODES = ('topk', 'threshold')


def _best_class_per_query(bboxes: torch.Tensor, scores: torch.Tensor,
                          labels: torch.Tensor) -> torch.Tensor:
    """Indices of one entry per distinct box, its best-scoring one, best
    first. mmdet's sigmoid DETR heads list a query once per class among
    their top ``max_per_img`` (query, class) pairs, every time with the
    same box; that box's best entry is the query's maximum class score."""
    order = torch.argsort(scores, descending=True, stable=True)
    _, inverse = torch.unique(bboxes[order], dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1, ), len(order),
                       dtype=torch.long, device=order.device)
    first = first.scatter_reduce(0, inverse, torch.arange(
        len(order), device=order.device), reduce='amin')
    return order[first.sort().values]


def select_predictions(bboxes: torch.Tensor,
                       scores: torch.Tensor,
                       labels: torch.Tensor,
                       mode: str = 'topk',
                       score_thr: float = 0.3,
                       nms_iou: Optional[float] = 0.5,
                       max_per_img: Optional[int] = 30,
                       class_agnostic: bool = True
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The predictions of one image that become its next labels.

    ``mode='topk'`` (default): every query counts once, with its maximum
    class score and that class (duplicate boxes of a sigmoid head's
    (query, class) list are merged), then NMS, then the best
    ``max_per_img``; no score threshold, since sigmoid scores over 256
    pseudo-classes rarely pass a fixed one. ``mode='threshold'``: the
    earlier rule, ``score >= score_thr``, NMS, the best ``max_per_img``.

    Args:
        bboxes (Tensor): (N, 4) x1y1x2y2.
        scores (Tensor): (N,).
        labels (Tensor): (N,) class ids.
        mode (str): 'topk' or 'threshold'. Defaults to 'topk'.
        score_thr (float): Keep ``score >= score_thr`` (mode 'threshold'
            only). Defaults to 0.3.
        nms_iou (float, optional): NMS IoU; None switches it off.
        max_per_img (int, optional): Keep the best this many.
        class_agnostic (bool): NMS across classes (a region is one
            pseudo-object whatever its cluster). Defaults to True.

    Returns:
        tuple[Tensor, Tensor, Tensor]: kept boxes, scores, labels, best
        first.
    """
    if mode not in SELECTION_MODES:
        raise ValueError(f'select_predictions: mode must be one of '
                         f'{SELECTION_MODES}, got {mode!r}')
    if mode == 'threshold':
        keep = scores >= score_thr
    elif len(bboxes):
        keep = _best_class_per_query(bboxes, scores, labels)
    else:
        keep = torch.zeros(0, dtype=torch.long, device=scores.device)
    bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    if nms_iou is not None and len(bboxes) > 1:
        from mmcv.ops import batched_nms
        idxs = torch.zeros_like(labels) if class_agnostic else labels
        _, inds = batched_nms(bboxes.float(), scores.float(), idxs,
                              dict(iou_threshold=float(nms_iou)))
        bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    else:
        order = torch.argsort(scores, descending=True, stable=True)
        bboxes, scores, labels = bboxes[order], scores[order], labels[order]
    if max_per_img is not None:
        bboxes, scores = bboxes[:max_per_img], scores[:max_per_img]
        labels = labels[:max_per_img]
    return bboxes, scores, labels


def pseudo_labels_from_proposals(proposal_json: str,
                                 out: str,
                                 num_classes: int = 256,
                                 seed: int = 0,
                                 max_per_img: Optional[int] = 30,
                                 batch_size: int = 4096,
                                 normalize: bool = True) -> Dict[str, Any]:
    """Stage B: cluster all box features and write the COCO json.

    Args:
        proposal_json (str): Stage A output (with its feature file).
        out (str): COCO json to write.
        num_classes (int): K. Defaults to 256.
        seed (int): k-means seed. Defaults to 0.
        max_per_img (int, optional): Round-0 labels are the best this many
            boxes of an image by stage-A score (all boxes are clustered).
            Defaults to 30, DETReg's top-30 targets; None or 0 keeps every
            stage-A box (the setting before session 7).
        batch_size (int): MiniBatchKMeans batch. Defaults to 4096.
        normalize (bool): Cosine geometry. Defaults to True.

    Returns:
        dict: Counts (images, annotations, images_without_boxes) and the
        size of the largest / smallest used cluster.
    """
    if max_per_img is not None and max_per_img < 0:
        raise ValueError(f'max_per_img must be >= 0 or None, got '
                         f'{max_per_img}')
    obj, feats = load_feature_proposals(proposal_json)
    if len(feats) == 0:
        raise ValueError(f'"{proposal_json}" holds no proposal to cluster')
    labels, _ = cluster_features(feats, num_classes, seed=seed,
                                 batch_size=batch_size, normalize=normalize)
    per_img: Dict[int, list] = {}
    for p, lab in zip(obj['proposals'], labels.tolist()):
        per_img.setdefault(p['image_id'], []).append((p, lab))
    boxes = {}
    for img_id, items in per_img.items():
        items = items[:max_per_img] if max_per_img else items
        b = np.asarray([p['bbox'] for p, _ in items], np.float64)
        b[:, 2:] += b[:, :2]
        boxes[img_id] = (b, np.asarray([lab for _, lab in items]),
                         np.asarray([p['score'] for p, _ in items]))
    sizes = np.bincount(labels, minlength=num_classes)
    counts = write_coco_json(
        out, obj['images'], boxes, cluster_class_names(num_classes),
        info=dict(source='feature_clusters', proposal_file=proposal_json,
                  num_classes=num_classes, seed=seed,
                  max_per_img=max_per_img, round=0))
    return dict(counts, used_clusters=int((sizes > 0).sum()),
                largest_cluster=int(sizes.max()),
                smallest_used_cluster=int(sizes[sizes > 0].min()))


def write_round(path: str, images: Sequence[Mapping],
                predictions: Mapping[int, Tuple[np.ndarray, np.ndarray,
                                                np.ndarray]],
                class_names: Sequence[str],
                round_idx: int,
                feats: Optional[Mapping[int, np.ndarray]] = None,
                recluster_seed: int = 0,
                info: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Write the labels of round ``round_idx`` from kept predictions.

    Args:
        path (str): Output COCO json.
        images (Sequence[dict]): Every image of the training set.
        predictions (Mapping): image id -> (bboxes, labels, scores), numpy.
        class_names (Sequence[str]): The categories (unchanged).
        round_idx (int): The round these labels train.
        feats (Mapping, optional): image id -> (N, C) features of that
            image's N boxes; when given, every label is replaced by a fresh
            k-means over all of them with ``len(class_names)`` clusters
            (re-clustering), so the round holds one label space. Every image
            with boxes must have one feature row per box.
        recluster_seed (int): Seed of that k-means.
        info (dict, optional): Extra provenance.

    Returns:
        dict: Counts of :func:`write_coco_json`.

    Raises:
        ValueError: With ``feats``, an image with boxes lacks features or
            has another number of feature rows (its old ids would stay in
            another label space).
    """
    predictions = dict(predictions)
    if feats is not None:
        ids = [i for i in sorted(predictions) if len(predictions[i][0])]
        bad = [i for i in ids if i not in feats
               or len(feats[i]) != len(predictions[i][0])]
        if bad:
            raise ValueError(
                f'write_round({path!r}): re-clustering needs one feature row '
                f'per box of every image; image id(s) {bad[:10]} '
                f'({len(bad)} in all) have none or a different number')
        if ids:
            allf = np.concatenate([feats[i] for i in ids])
            labels, _ = cluster_features(allf, len(class_names),
                                         seed=recluster_seed)
            start = 0
            for i in ids:
                b, _, s = predictions[i]
                predictions[i] = (b, labels[start:start + len(b)], s)
                start += len(b)
    return write_coco_json(path, images, predictions, class_names,
                           info=dict(info or {}, round=round_idx,
                                     reclustered=feats is not None))
