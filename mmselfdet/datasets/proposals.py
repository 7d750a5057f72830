# Copyright (c) mmselfdet contributors. All rights reserved.
"""Offline object proposals: file format, filters and selective search.

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

Selective search uses OpenCV's contrib module ``cv2.ximgproc``
(``opencv-contrib-python-headless``, installed after mmcv by
``tools/setup_env.sh``).
"""
from __future__ import annotations

import ctypes
import inspect
import json
import os
import os.path as osp
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from mmselfdet.structures.box_ops import box_shape_masks

__all__ = [
    'PROPOSAL_FORMAT', 'PROPOSAL_FORMAT_VERSION', 'BBOX_DECIMALS',
    'SCORE_DIGITS', 'FILTER_KEYS', 'rank_scores', 'save_proposal_file',
    'load_proposal_file', 'filter_proposals', 'selective_search',
    'read_image_bgr', 'to_bgr_uint8', 'relative_image_name', 'list_images',
    'write_proposal_json', 'round_coord', 'round_score', 'FILTER_ARGS',
    'image_size_from_header'
]

PROPOSAL_FORMAT = 'mmselfdet-proposals'
PROPOSAL_FORMAT_VERSION = '1.0'
#: Decimals kept for box coordinates in the json file.
BBOX_DECIMALS = 2
#: Significant digits kept for scores in the json file.
SCORE_DIGITS = 6
#: Statistics keys of :func:`filter_proposals`, in the order of its steps.
FILTER_KEYS = ('degenerate', 'min_size', 'aspect', 'area_ratio', 'nms', 'topk')

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


def _as_boxes(bboxes: Any) -> np.ndarray:
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
    merge files without touching the numbers. The file is written to a
    temporary name and renamed, so a reader never sees half a file.

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
    path = os.fspath(path)
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text + '\n')
    os.replace(tmp, path)


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
        boxes = _as_boxes(bboxes)
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


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------
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
    boxes = _as_boxes(bboxes)
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


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def list_images(img_root: str, ann_file: str = '') -> List[Dict[str, Any]]:
    """List the images as :class:`UnlabeledDataset` does, sorted by id.

    Args:
        img_root: Image folder; names are relative to it.
        ann_file: ``''`` (scan ``img_root``), a list file or a COCO json.

    Returns:
        list[dict]: ``id``, ``file_name``, ``path``, ``width``/``height``
        (from a COCO json, else None). A list file naming an image twice
        gives it once (first id).
    """
    from .unlabeled import UnlabeledDataset
    ds = UnlabeledDataset(ann_file=ann_file, data_prefix=dict(img=img_root),
                          pipeline=[], lazy_init=False, serialize_data=False)
    images, seen = [], set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        name = relative_image_name(info['img_path'], ds.image_root)
        if ds.source != 'coco':
            if name in seen:
                continue
            seen.add(name)
        images.append(dict(id=int(info['img_id']), file_name=name,
                           path=info['img_path'], width=info.get('width'),
                           height=info.get('height')))
    images.sort(key=lambda im: im['id'])
    return images


def relative_image_name(img_path: str, root: str) -> str:
    """The name of an image in a proposal file: its path relative to
    ``root`` with ``/`` separators (the normalised path if ``root`` is
    empty)."""
    rel = osp.relpath(img_path, root) if root else osp.normpath(img_path)
    return rel.replace(os.sep, '/')


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """Convert a decoded image of any common layout to uint8 3-channel BGR.

    * gray (2-D or 1 channel) -> replicated to BGR; gray + alpha -> gray;
      BGRA -> BGR (alpha dropped, as ``LoadImageFromFile`` does);
    * uint16 -> uint8 by ``round(v / 257)`` (65535 -> 255); float -> taken
      as ``[0, 1]`` if its maximum is <= 1 and ``[0, 255]`` otherwise,
      clipped.

    Args:
        img: Decoded image (H, W) or (H, W, C).

    Returns:
        np.ndarray: uint8 (H, W, 3), C-contiguous.

    Raises:
        ValueError: Unsupported dtype or channel count.
    """
    if img.dtype == np.uint8:
        out = img
    elif img.dtype == np.uint16:
        out = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.floating):
        f = np.nan_to_num(img.astype(np.float32))
        if f.size and float(f.max()) <= 1.0:
            f = f * 255.0
        out = np.clip(np.round(f), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f'unsupported image dtype {img.dtype}')
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    elif out.ndim == 3 and out.shape[2] == 2:
        out = cv2.cvtColor(np.ascontiguousarray(out[:, :, 0]),
                           cv2.COLOR_GRAY2BGR)
    elif out.ndim == 3 and out.shape[2] == 4:
        out = np.ascontiguousarray(out[:, :, :3])
    elif not (out.ndim == 3 and out.shape[2] == 3):
        raise ValueError(f'unsupported image shape {img.shape}')
    return np.ascontiguousarray(out)


def read_image_bgr(path: str) -> np.ndarray:
    """Decode an image file into uint8 BGR, in ``LoadImageFromFile``'s frame.

    The flags are ``cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR``: 16-bit data
    and single channels survive decoding for :func:`to_bgr_uint8`, and the
    EXIF orientation is applied as mmcv's ``LoadImageFromFile`` does (plain
    ``cv2.IMREAD_UNCHANGED`` ignores it, which would put the boxes of a
    rotated JPEG in the wrong frame). OpenCV drops alpha in this mode.

    Args:
        path: Image file.

    Returns:
        np.ndarray: uint8 (H, W, 3) BGR.

    Raises:
        OSError: The file cannot be read.
        ValueError: The data cannot be decoded (corrupt, truncated,
            unsupported); the message names the file.
    """
    buf = np.fromfile(path, dtype=np.uint8)
    if buf.size == 0:
        raise ValueError(f'{path}: empty file')
    img = cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None or img.size == 0:
        raise ValueError(f'{path}: cannot decode image data')
    try:
        return to_bgr_uint8(img)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from e


# --------------------------------------------------------------------------
# selective search
# --------------------------------------------------------------------------
def _ximgproc():
    seg = getattr(getattr(cv2, 'ximgproc', None), 'segmentation', None)
    if seg is None or not hasattr(seg,
                                  'createSelectiveSearchSegmentation'):
        raise ImportError(
            f'selective search needs cv2.ximgproc, which this OpenCV '
            f'({cv2.__version__}) lacks: install opencv-contrib-python-headless '
            'after mmcv (mmcv pulls in the plain opencv-python, which must not '
            'win); tools/setup_env.sh does this')
    return seg


_C_RAND = None


def _seed_c_rand(seed: int) -> bool:
    """Seed the C library's ``rand()``.

    OpenCV's selective search ranks regions with ``rand()``, so without this
    the order of its output depends on how many images the process handled
    before (and so on the number of workers).
    """
    global _C_RAND
    if _C_RAND is None:
        try:
            libc = ctypes.CDLL(None)
            _C_RAND = libc.srand
        except (OSError, AttributeError, TypeError):
            _C_RAND = False
            warnings.warn('cannot seed the C rand() used by OpenCV selective '
                          'search: proposal order may depend on the worker')
    if _C_RAND:
        _C_RAND(ctypes.c_uint(seed))
        return True
    return False


def selective_search(img_bgr: np.ndarray,
                     mode: str = 'fast',
                     max_side: Optional[int] = 500,
                     max_boxes: Optional[int] = None,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Selective search (Uijlings et al.) with OpenCV's ``cv2.ximgproc``.

    The image is resized so that its longer side is ``max_side`` (down or
    up; ``None`` keeps its size), searched, and the boxes are mapped back to
    the original pixels. OpenCV's own threading is left as it is: call
    ``cv2.setNumThreads(1)`` in worker processes.

    Args:
        img_bgr: uint8 (H, W, 3) BGR image (see :func:`to_bgr_uint8`).
        mode: ``'fast'`` or ``'quality'`` (OpenCV's two strategies).
        max_side: Longer side the search runs at. Defaults to 500.
        max_boxes: Keep the first ``max_boxes`` of the ranked output.
        seed: Seed of the random part of the ranking (see
            :func:`_seed_c_rand`); the same image and seed give the same
            output in any process.

    Returns:
        tuple[np.ndarray, np.ndarray]: float32 (N, 4) x1y1x2y2 boxes in
        original pixels, in selective search's ranking order, and their
        :func:`rank_scores`.

    Raises:
        ImportError: ``cv2.ximgproc`` is missing.
        ValueError: Bad mode or image.
    """
    seg = _ximgproc()
    if mode not in ('fast', 'quality'):
        raise ValueError(f"mode must be 'fast' or 'quality', got {mode!r}")
    if img_bgr.ndim != 3 or img_bgr.shape[2] != 3 or img_bgr.dtype != np.uint8:
        raise ValueError('selective_search needs a uint8 (H, W, 3) image, got '
                         f'{img_bgr.dtype} {img_bgr.shape}')
    h, w = img_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f'empty image {img_bgr.shape}')
    img = img_bgr
    sx = sy = 1.0
    if max_side:
        scale = float(max_side) / max(h, w)
        nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img_bgr, (nw, nh), interpolation=interp)
            sx, sy = nw / w, nh / h
    ss = seg.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(img))
    if mode == 'fast':
        ss.switchToSelectiveSearchFast()
    else:
        ss.switchToSelectiveSearchQuality()
    _seed_c_rand(seed)
    rects = ss.process()
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    if max_boxes is not None:
        rects = rects[:int(max_boxes)]
    boxes = np.empty_like(rects)
    boxes[:, 0] = rects[:, 0] / sx
    boxes[:, 1] = rects[:, 1] / sy
    boxes[:, 2] = (rects[:, 0] + rects[:, 2]) / sx
    boxes[:, 3] = (rects[:, 1] + rects[:, 3]) / sy
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    return boxes.astype(np.float32), rank_scores(len(boxes))


def image_size_from_header(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as ``LoadImageFromFile`` decodes it.

    Reads only the header (Pillow) and swaps the sides when the EXIF
    orientation is a 90-degree rotation; falls back to a full decode.

    Raises:
        ValueError: The image cannot be read; the message names the file.
    """
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
            try:
                orient = int(im.getexif().get(0x0112, 1))
            except Exception:  # noqa: BLE001  (broken EXIF: no rotation)
                orient = 1
        return (h, w) if orient in (5, 6, 7, 8) else (w, h)
    except Exception:  # noqa: BLE001
        try:
            img = read_image_bgr(path)
        except OSError as e:
            raise ValueError(f'{path}: cannot read image ({e})') from e
        return img.shape[1], img.shape[0]
