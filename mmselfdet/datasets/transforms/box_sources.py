# Copyright (c) mmselfdet contributors. All rights reserved.
"""Boxes for the proposal-driven view makers (:class:`ObjectAwareCrops`,
:class:`SoCoViews`): reading them from a proposal file or the ground truth,
cropping a view that carries them, and the box-region helpers of the
makers (context, dilation, visibility in a crop)."""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes

from .geometric import CropBox, crop_resize_view, sample_resized_crop
from .views import make_view, map_boxes

BOX_SOURCES = ('proposals', 'gt_bboxes')
_DILATION_MODES = ('image', 'coords')


class SourceBoxes:
    """Boxes a view maker may use, in the current image's pixels.

    Attributes:
        boxes (np.ndarray): (N, 4) float32 x1y1x2y2, clipped to the image,
            every box of positive width and height.
        ids (np.ndarray): (N,) int64 correspondence ids: the row in
            ``results['proposals']``, or ``gt_instances_ids`` (row in
            ``gt_bboxes`` when absent).
        scores (np.ndarray, optional): (N,) proposal scores.
        labels (np.ndarray, optional): (N,) ``gt_bboxes_labels``.
    """

    def __init__(self, boxes: np.ndarray, ids: np.ndarray,
                 scores: Optional[np.ndarray] = None,
                 labels: Optional[np.ndarray] = None) -> None:
        self.boxes = boxes
        self.ids = ids
        self.scores = scores
        self.labels = labels

    def __len__(self) -> int:
        return len(self.boxes)


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, BaseBoxes):
        return value.numpy()
    if hasattr(value, 'detach'):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def collect_boxes(results: dict, box_source: str) -> SourceBoxes:
    """Read the boxes of ``box_source`` from ``results``.

    * ``'proposals'``: ``results['proposals']`` ((N, 4) x1y1x2y2 in the
      pixels of the *loaded* image, as mmdet's ``LoadProposals`` writes
      them) with ``results['proposals_scores']`` when present. mmdet's
      geometric transforms do not move proposals, so when the image already
      went through geometric transforms (``homography_matrix`` present) the
      proposals are mapped by that matrix into the current image.
    * ``'gt_bboxes'``: ``results['gt_bboxes']`` (already in the current
      image) with ``gt_instances_ids`` and ``gt_bboxes_labels``.

    Boxes are clipped to the image; non-finite boxes and boxes of zero width
    or height after clipping (empty, outside the image) are dropped, their
    ids with them.

    Raises:
        KeyError: when the source key is absent (a pipeline error; an empty
            array is fine and means "no box").
    """
    if box_source not in BOX_SOURCES:
        raise ValueError(f'box_source must be one of {BOX_SOURCES}, got '
                         f'{box_source!r}')
    if results.get(box_source) is None:
        hint = ("mmdet's LoadProposals" if box_source == 'proposals' else
                "LoadAnnotations(with_bbox=True)")
        raise KeyError(
            f'box_source={box_source!r} but results has no {box_source!r} '
            f'for {results.get("img_path", "an image")}; add {hint} before '
            'the view maker or change box_source')
    boxes = _to_numpy(results[box_source]).astype(np.float32).reshape(-1, 4)
    num = len(boxes)
    scores = labels = None
    if box_source == 'proposals':
        ids = np.arange(num, dtype=np.int64)
        if results.get('proposals_scores') is not None:
            scores = _to_numpy(results['proposals_scores']).astype(
                np.float32).reshape(-1)
        matrix = results.get('homography_matrix')
        if matrix is not None and num:
            boxes = map_boxes(boxes, matrix)
    else:
        ids = results.get('gt_instances_ids')
        ids = np.arange(num, dtype=np.int64) if ids is None else \
            np.asarray(ids, np.int64).reshape(-1)
        if results.get('gt_bboxes_labels') is not None:
            labels = np.asarray(results['gt_bboxes_labels'],
                                np.int64).reshape(-1)
    height, width = results['img'].shape[:2]
    finite = np.isfinite(boxes).all(axis=1)
    boxes = np.where(finite[:, None], boxes, 0).astype(np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return SourceBoxes(
        boxes[keep], ids[keep],
        None if scores is None else scores[keep],
        None if labels is None else labels[keep])


def boxes_view(results: dict,
               crop_box: Sequence[int],
               out_size: Tuple[int, int],
               source: SourceBoxes,
               select: Optional[np.ndarray] = None,
               interpolation: str = 'bilinear',
               min_box_size: float = 1.0) -> dict:
    """One view: crop ``crop_box`` of ``results['img']``, resize it to
    ``out_size`` (w, h) with :func:`crop_resize_view`, carry the boxes of
    ``source`` (rows ``select`` only, in that order, if given) and build
    the view dict with :func:`make_view` (which composes the source image's
    ``homography_matrix``). Boxes whose visible width or height in the view
    is below ``min_box_size`` (or zero) are dropped with their ids and
    labels."""
    rows = np.arange(len(source)) if select is None else np.asarray(
        select, np.int64)
    work = dict(
        img=results['img'],
        gt_bboxes=HorizontalBoxes(source.boxes[rows].copy()),
        gt_instances_ids=source.ids[rows].copy())
    if source.labels is not None:
        work['gt_bboxes_labels'] = source.labels[rows].copy()
    crop_resize_view(work, crop_box, out_size, interpolation=interpolation,
                     clip_object_border=True, min_box_size=min_box_size)
    view = make_view(results, work['img'], work['homography_matrix'],
                     boxes=work['gt_bboxes'].numpy(),
                     ids=work['gt_instances_ids'])
    if source.labels is not None:
        view['gt_bboxes_labels'] = work['gt_bboxes_labels']
    return view


def int_region(box: Sequence[float], width: int, height: int) -> CropBox:
    """Smallest integer pixel region holding ``box``, inside the image and
    at least one pixel wide and high."""
    x0 = int(min(max(math.floor(box[0]), 0), width - 1))
    y0 = int(min(max(math.floor(box[1]), 0), height - 1))
    x1 = int(min(max(math.ceil(box[2]), x0 + 1), width))
    y1 = int(min(max(math.ceil(box[3]), y0 + 1), height))
    return x0, y0, x1, y1


def add_context(box: Sequence[float], context: Tuple[float, float],
                width: int, height: int) -> np.ndarray:
    """The official small-box rule (``extract_bb`` of
    ``datasets/openimages_dataset_bing.py``): a box narrower than
    ``context[0]`` gains ``context[0] / 2`` px on the left and on the right,
    one lower than ``context[1]`` gains ``context[1] / 2`` px above and
    below; the result is clipped to the image (the official code's special
    cases at the image border, which shift the region instead, are not
    reproduced).

    Returns:
        np.ndarray: (4,) float64 x1y1x2y2.
    """
    out = np.asarray(box, np.float64).copy()
    for axis, size in ((0, context[0]), (1, context[1])):
        if out[axis + 2] - out[axis] < size:
            out[axis] -= size / 2
            out[axis + 2] += size / 2
    return np.clip(out, 0, [width, height, width, height])


def dilate_box(box: Sequence[float], d: float, width: int, height: int,
               mode: str = 'image') -> np.ndarray:
    """The dilated region of ``box`` (x1y1x2y2), clipped to the image.

    * ``'image'`` (the paper's "dilated by 10-20 % of the image size"):
      the box grows by ``d * width`` in width and ``d * height`` in height
      in total, ``d / 2`` of the image size on each side;
    * ``'coords'`` (the official code, ``extract_bb`` of
      ``datasets/openimages_dataset_bing.py``): each coordinate moves in
      proportion to itself, ``(x1 (1 - d), y1 (1 - d), x2 (1 + d),
      y2 (1 + d))``, so a box near the top-left corner barely grows.

    Returns:
        np.ndarray: (4,) float64 x1y1x2y2 inside ``[0, width] x [0,
        height]``.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if mode == 'image':
        dx, dy = d * width / 2, d * height / 2
        out = np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy])
    elif mode == 'coords':
        out = np.array([x1 * (1 - d), y1 * (1 - d), x2 * (1 + d),
                        y2 * (1 + d)])
    else:
        raise ValueError(f'dilation_mode must be one of {_DILATION_MODES}, '
                         f'got {mode!r}')
    return np.clip(out, 0, [width, height, width, height])


def visible_fraction(boxes: np.ndarray, crop: Sequence[float]) -> np.ndarray:
    """Fraction of each box's area inside ``crop`` (x1y1x2y2).

    Args:
        boxes (np.ndarray): (N, 4) x1y1x2y2 boxes of positive area.
        crop (Sequence[float]): The crop region.

    Returns:
        np.ndarray: (N,) fractions in [0, 1].
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    iw = (np.minimum(boxes[:, 2], crop[2])
          - np.maximum(boxes[:, 0], crop[0])).clip(0)
    ih = (np.minimum(boxes[:, 3], crop[3])
          - np.maximum(boxes[:, 1], crop[1])).clip(0)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return iw * ih / np.maximum(area, 1e-12)


def visible_mask(boxes: np.ndarray, crop: Sequence[float],
                 min_visible: float) -> np.ndarray:
    """(N,) bool: a box is visible in ``crop`` when any part of it is inside
    (``min_visible == 0``, the official ``is_overlap``) or when at least
    ``min_visible`` of its area is."""
    frac = visible_fraction(boxes, crop)
    return frac > 0 if min_visible == 0 else frac >= min_visible


#: the former name of :func:`~.geometric.sample_resized_crop` (same
#: arguments, same draws)
sample_crop_in = sample_resized_crop


def _check_range(name: str, value: Sequence[float], upper: float = math.inf
                 ) -> Tuple[float, float]:
    if len(value) != 2 or not 0 < value[0] <= value[1] <= upper:
        raise ValueError(f'{name} must be (min, max) with 0 < min <= max'
                         f'{" <= " + str(upper) if upper < math.inf else ""}, '
                         f'got {value}')
    return float(value[0]), float(value[1])


def _as_wh(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'{name} must be a positive int or (w, h), got '
                         f'{size}')
    return size
