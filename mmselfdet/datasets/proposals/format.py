# Copyright (c) mmselfdet contributors. All rights reserved.
"""The proposal file format: write, read and validate.

File format
-----------
One json per dataset, COCO-style::

    {
      "info": {"format": "mmselfdet-proposals", "format_version": "1.0",
               "algorithm": ..., "mode": ..., "parameters": {...},
               "filters": {...}, "opencv_version": ..., "created": ...,
               "mmselfdet_version": ..., "failed_images": [...], ...},
      "images": [{"id": 1, "file_name": "a/b.jpg", "width": 640,
                  "height": 480}, ...],
      "proposals": [{"image_id": 1, "bbox": [x, y, w, h], "score": 1.0}, ...]
    }

* ``bbox`` is COCO ``[x, y, w, h]`` in pixels of the image as
  ``LoadImageFromFile`` decodes it (EXIF orientation applied);
  ``width``/``height`` are that image's size.
* ``images`` is sorted by ``id``; ``proposals`` are grouped by image (in
  ``id`` order) and sorted by descending ``score`` inside an image (ties keep
  their order), so the first ``k`` proposals of an image are its top ``k``.
* An image listed in ``images`` without any proposal has an empty list
  (e.g. it could not be decoded: ``info['failed_images']`` names it).
* Numbers are rounded (boxes to :data:`BBOX_DECIMALS` decimals, scores to
  :data:`SCORE_DIGITS` significant digits), keys are sorted and separators
  fixed, so the same content always gives byte-identical files.
* Selective search has no scores: :func:`rank_scores` gives the proposal at
  0-based rank ``r`` of its output the score ``1 / (1 + r)``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from mmselfdet.utils.io import atomic_write

__all__ = [
    'PROPOSAL_FORMAT', 'PROPOSAL_FORMAT_VERSION', 'BBOX_DECIMALS',
    'SCORE_DIGITS', 'rank_scores', 'round_coord', 'round_score', 'as_boxes',
    'write_proposal_json', 'save_proposal_file', 'load_proposal_file'
]

PROPOSAL_FORMAT = 'mmselfdet-proposals'
PROPOSAL_FORMAT_VERSION = '1.0'
#: Decimals kept for box coordinates in the json file.
BBOX_DECIMALS = 2
#: Significant digits kept for scores in the json file.
SCORE_DIGITS = 6

PathLike = Union[str, 'os.PathLike[str]']
ImageKey = Union[int, str]


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------
def round_coord(v: float) -> float:
    """Round a box coordinate as the file stores it (no ``-0.0``)."""
    return round(float(v), BBOX_DECIMALS) + 0.0


def round_score(v: float) -> float:
    """Round a score as the file stores it (significant digits)."""
    return float(f'{float(v):.{SCORE_DIGITS}g}') + 0.0


def rank_scores(n: int) -> np.ndarray:
    """Scores of ``n`` ranked proposals without native scores.

    Args:
        n: Number of proposals, best first.

    Returns:
        np.ndarray: float32 ``1 / (1 + rank)`` for ranks ``0 .. n-1``.
    """
    return (1.0 / (1.0 + np.arange(n, dtype=np.float64))).astype(np.float32)


def as_boxes(bboxes: Any) -> np.ndarray:
    """``bboxes`` as float64 (N, 4); an empty input gives (0, 4)."""
    arr = np.asarray(bboxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f'boxes must have shape (N, 4), got {arr.shape}')
    return arr


# --------------------------------------------------------------------------
# file format
# --------------------------------------------------------------------------
def write_proposal_json(path: PathLike, images: Sequence[Mapping[str, Any]],
                        proposals: Sequence[Mapping[str, Any]],
                        info: Mapping[str, Any]) -> None:
    """Write an already ordered and rounded proposal file, atomically.

    Low-level writer shared by :func:`save_proposal_file` and tools that
    merge files without touching the numbers. The file is written with
    :func:`mmselfdet.utils.io.atomic_write`, so a reader never sees half a
    file.

    Args:
        path: Output json path.
        images: ``{'id', 'file_name', 'width', 'height'}`` entries, in
            their final order.
        proposals: ``{'image_id', 'bbox', 'score'}`` entries, in their final
            order.
        info: Provenance; ``format`` and ``format_version`` are added.
    """
    info = dict(info)
    info.setdefault('format', PROPOSAL_FORMAT)
    info.setdefault('format_version', PROPOSAL_FORMAT_VERSION)
    obj = dict(info=info, images=list(images), proposals=list(proposals))
    text = json.dumps(obj, sort_keys=True, separators=(',', ':'),
                      allow_nan=False, ensure_ascii=True)
    atomic_write(path, text + '\n')


def save_proposal_file(path: PathLike, images: Sequence[Mapping[str, Any]],
                       proposals_by_image: Mapping[int, Any],
                       info: Optional[Mapping[str, Any]] = None) -> None:
    """Save proposals in the mmselfdet proposal format (see module doc).

    Args:
        path: Output json path.
        images: One dict per image with ``id`` (int), ``file_name`` (path
            relative to the image root), ``width`` and ``height``. Every
            image is listed, whether it has proposals or not.
        proposals_by_image: Image id -> ``dict(bboxes=(N, 4) x1y1x2y2,
            scores=(N,))`` (or a ``(bboxes, scores)`` tuple). Missing
            ``scores`` become :func:`rank_scores` of the given order.
            Images without an entry get an empty list.
        info: Provenance written under ``info`` (json-serialisable).

    Raises:
        ValueError: Duplicate or non-integer image ids, proposals of an
            image that is not in ``images``, or non-finite numbers.
    """
    imgs = []
    ids = set()
    for im in images:
        img_id = im['id']
        if isinstance(img_id, bool) or not isinstance(img_id, (int, np.integer)):
            raise ValueError(f'{path}: image ids must be integers, got '
                             f'{img_id!r} ({im.get("file_name")})')
        img_id = int(img_id)
        if img_id in ids:
            raise ValueError(f'{path}: duplicate image id {img_id}')
        ids.add(img_id)
        imgs.append(dict(id=img_id, file_name=str(im['file_name']),
                         width=int(im['width']), height=int(im['height'])))
    imgs.sort(key=lambda im: im['id'])
    unknown = sorted(int(k) for k in proposals_by_image if int(k) not in ids)
    if unknown:
        raise ValueError(f'{path}: proposals given for {len(unknown)} image '
                         f'id(s) not in images, e.g. {unknown[:5]}')
    props = []
    for im in imgs:
        entry = proposals_by_image.get(im['id'])
        if entry is None:
            continue
        if isinstance(entry, Mapping):
            bboxes, scores = entry['bboxes'], entry.get('scores')
        else:
            bboxes, scores = entry
        boxes = as_boxes(bboxes)
        if scores is None:
            scores = rank_scores(len(boxes))
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f'{path}: image {im["id"]} has {len(boxes)} boxes '
                             f'but {len(scores)} scores')
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f'{path}: image {im["id"]} ({im["file_name"]}) '
                             'has non-finite box coordinates or scores')
        order = np.argsort(-scores, kind='stable')
        for k in order.tolist():
            x1, y1, x2, y2 = boxes[k].tolist()
            x, y = round_coord(x1), round_coord(y1)
            props.append(dict(image_id=im['id'],
                              bbox=[x, y, round_coord(x2 - x1),
                                    round_coord(y2 - y1)],
                              score=round_score(scores[k])))
    write_proposal_json(path, imgs, props, dict(info or {}))


def _file_error(path: str, msg: str) -> ValueError:
    return ValueError(f'proposal file "{path}": {msg}')


def load_proposal_file(
        path: PathLike) -> Tuple[Dict[ImageKey, Dict[str, Any]], Dict[str, Any]]:
    """Load a proposal file written by :func:`save_proposal_file`.

    Args:
        path: The json file.

    Returns:
        tuple[dict, dict]: ``(table, info)``. ``table`` maps both the image
        id (int) and the image's ``file_name`` (str, relative path) to the
        same entry ``{'bboxes': float32 (N, 4) x1y1x2y2, 'scores': float32
        (N,), 'image_id': int, 'file_name': str, 'width': int, 'height':
        int}``, proposals sorted by descending score. An image listed twice
        under the same ``file_name`` is found by name under its smallest
        id. ``info`` is the file's provenance dict. A COCO detection json
        (``annotations`` instead of ``proposals``, e.g. DETR pretraining's
        pseudo-labels) is read the same way: crowd boxes are left out and
        a box without ``score`` scores 1.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Invalid json, missing keys, a proposal of an unknown
            image id, malformed boxes or non-finite numbers; the message
            names the file.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'proposal file "{path}" does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            obj = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _file_error(path, f'invalid json ({e})') from e
    if not isinstance(obj, dict):
        raise _file_error(path, 'top level is not a json object')
    coco = 'proposals' not in obj and 'annotations' in obj
    missing = [k for k in ('images', 'annotations' if coco else 'proposals')
               if k not in obj]
    if missing:
        raise _file_error(path, f'missing key(s) {missing}')
    info = obj.get('info') or {}
    if coco:  # a COCO detection json (pseudo-labels): score 1 if absent
        obj['proposals'] = [dict(a, score=a.get('score', 1.0))
                            for a in obj['annotations']
                            if not a.get('iscrowd', 0)]
    table: Dict[ImageKey, Dict[str, Any]] = {}
    order = []
    for k, im in enumerate(obj['images']):
        try:
            img_id, name = im['id'], im['file_name']
            width, height = int(im['width']), int(im['height'])
        except (KeyError, TypeError, ValueError) as e:
            raise _file_error(
                path, f'images[{k}] lacks a valid id / file_name / width / '
                f'height ({e!r})') from e
        if img_id in table:
            raise _file_error(path, f'duplicate image id {img_id!r}')
        table[img_id] = dict(image_id=img_id, file_name=name, width=width,
                             height=height)
        order.append(img_id)

    props = obj['proposals']
    try:
        pid = [p['image_id'] for p in props]
        boxes = np.asarray([p['bbox'] for p in props], dtype=np.float64)
        scores = np.asarray([p['score'] for p in props], dtype=np.float64)
    except (KeyError, TypeError) as e:
        raise _file_error(path, f'a proposal lacks image_id / bbox / score '
                          f'({e!r})') from e
    except ValueError as e:
        raise _file_error(path, f'malformed bbox or score ({e})') from e
    if len(props) == 0:
        boxes = np.zeros((0, 4), np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise _file_error(path, 'every bbox must be [x, y, w, h]')
    bad = ~(np.isfinite(boxes).all(1) & np.isfinite(scores))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _file_error(path, f'{int(bad.sum())} proposal(s) with non-finite '
                          f'numbers, e.g. proposals[{k}] of image '
                          f'{pid[k]!r}')
    unknown = sorted({i for i in pid if i not in table}, key=repr)
    if unknown:
        raise _file_error(path, f'{len(unknown)} image_id(s) of proposals are '
                          f'not in images, e.g. {unknown[:5]}')
    xyxy = boxes.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    xyxy = xyxy.astype(np.float32)
    scores32 = scores.astype(np.float32)
    groups: Dict[Any, list] = {}
    for k, i in enumerate(pid):
        groups.setdefault(i, []).append(k)
    for img_id in order:
        idx = np.asarray(groups.get(img_id, []), dtype=np.int64)
        if len(idx):
            idx = idx[np.argsort(-scores[idx], kind='stable')]
        entry = table[img_id]
        entry['bboxes'] = xyxy[idx].reshape(-1, 4)
        entry['scores'] = scores32[idx]
    for img_id in sorted(order, key=repr):
        name = table[img_id]['file_name']
        table.setdefault(name, table[img_id])
    return table, info
