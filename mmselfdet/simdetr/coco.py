# Copyright (c) mmselfdet contributors. All rights reserved.
"""COCO json files of pseudo-labels (DETR pretraining).

A pseudo-label file is a standard COCO detection json that mmdet's
``CocoDataset`` loads: ``images`` (id, file_name, width, height),
``annotations`` (``bbox`` ``[x, y, w, h]``, ``category_id``, ``area``,
``iscrowd=0`` and an extra ``score``) and ``categories`` ``{'id': k,
'name': 'cluster_%03d' % k}`` for ``k`` in ``0..K-1`` (category id ==
cluster id). The config gives the dataset ``metainfo=dict(classes=
cluster_class_names(K))`` and the head ``num_classes=K``.
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmselfdet.datasets.proposals import (load_proposal_file, round_coord,
                                          round_score)

__all__ = ['cluster_class_names', 'write_coco_json', 'read_coco_images',
           'proposals_to_coco']


def cluster_class_names(num_classes: int) -> Tuple[str, ...]:
    """``('cluster_000', 'cluster_001', ...)`` for ``num_classes`` ids."""
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    return tuple(f'cluster_{k:03d}' for k in range(num_classes))


def write_coco_json(path: str,
                    images: Sequence[Mapping[str, Any]],
                    boxes_by_image: Mapping[int, Tuple[np.ndarray, np.ndarray,
                                                       np.ndarray]],
                    class_names: Sequence[str],
                    info: Optional[Mapping[str, Any]] = None) -> dict:
    """Write a COCO detection json atomically.

    Args:
        path (str): Output file.
        images (Sequence[dict]): ``id``, ``file_name``, ``width``,
            ``height`` of every image (kept even without boxes).
        boxes_by_image (Mapping): image id -> ``(bboxes (N, 4) x1y1x2y2,
            labels (N,) in [0, len(class_names)), scores (N,))``.
        class_names (Sequence[str]): Category names; category id = index.
        info (dict, optional): Provenance stored under ``info``.

    Returns:
        dict: Counts ``images``, ``annotations``, ``images_without_boxes``.
    """
    num_classes = len(class_names)
    ids = {int(im['id']) for im in images}
    unknown = sorted(set(int(k) for k in boxes_by_image) - ids)
    if unknown:
        raise ValueError(f'{path}: boxes for image ids not in images, e.g. '
                         f'{unknown[:5]}')
    anns, empty = [], 0
    for im in sorted(images, key=lambda im: int(im['id'])):
        entry = boxes_by_image.get(int(im['id']))
        if entry is None or len(entry[0]) == 0:
            empty += 1
            continue
        bboxes, labels, scores = (np.asarray(a) for a in entry)
        if not (len(bboxes) == len(labels) == len(scores)):
            raise ValueError(f'{path}: image {im["id"]}: {len(bboxes)} boxes, '
                             f'{len(labels)} labels, {len(scores)} scores')
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f'{path}: image {im["id"]}: labels must lie in '
                             f'[0, {num_classes}), got {labels.min()}..'
                             f'{labels.max()}')
        for (x1, y1, x2, y2), lab, sc in zip(bboxes.tolist(), labels.tolist(),
                                             scores.tolist()):
            w, h = round_coord(x2 - x1), round_coord(y2 - y1)
            anns.append(dict(id=len(anns) + 1, image_id=int(im['id']),
                             category_id=int(lab),
                             bbox=[round_coord(x1), round_coord(y1), w, h],
                             area=round_coord(w * h), iscrowd=0,
                             score=round_score(sc)))
    obj = dict(
        info=dict(info or {}),
        images=[dict(id=int(im['id']), file_name=str(im['file_name']),
                     width=int(im['width']), height=int(im['height']))
                for im in sorted(images, key=lambda im: int(im['id']))],
        annotations=anns,
        categories=[dict(id=k, name=n) for k, n in enumerate(class_names)])
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, separators=(',', ':'), allow_nan=False)
    os.replace(tmp, path)
    return dict(images=len(obj['images']), annotations=len(anns),
                images_without_boxes=empty)


def read_coco_images(path: str) -> Tuple[list, list]:
    """``(images, categories)`` of a COCO json, with a clear error."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'COCO json "{path}" does not exist')
    with open(path) as f:
        obj = json.load(f)
    for key in ('images', 'categories'):
        if key not in obj:
            raise KeyError(f'"{path}" is not a COCO detection json (no '
                           f'"{key}" key)')
    return obj['images'], obj['categories']


def proposals_to_coco(proposal_file: str,
                      out: str,
                      topk: Optional[int] = 30,
                      class_name: str = 'object') -> Dict[str, int]:
    """Class-agnostic COCO json from a proposal file (DETReg-style targets).

    Keeps the ``topk`` best proposals of every image (selective search's
    rank order), all with category 0 ``class_name``.

    Args:
        proposal_file (str): A file of :mod:`mmselfdet.datasets.proposals`.
        out (str): Output COCO json.
        topk (int, optional): Boxes per image. Defaults to 30 (DETReg).
        class_name (str): The one category. Defaults to 'object'.

    Returns:
        dict: Counts as :func:`write_coco_json`.
    """
    table, info = load_proposal_file(proposal_file)
    images, boxes = [], {}
    for key, e in table.items():
        if not isinstance(key, int) or key != e['image_id']:
            continue  # the same entry is also keyed by file name
        images.append(dict(id=e['image_id'], file_name=e['file_name'],
                           width=e['width'], height=e['height']))
        b, s = e['bboxes'][:topk], e['scores'][:topk]
        boxes[e['image_id']] = (b, np.zeros(len(b), np.int64), s)
    return write_coco_json(
        out, images, boxes, (class_name, ),
        info=dict(source='proposals', proposal_file=proposal_file, topk=topk,
                  proposal_info=info))
