# Copyright (c) mmselfdet contributors. All rights reserved.
"""Object-aware crops (Mishra et al., TMLR 2022) and the box helpers shared
by the proposal-driven view makers (:class:`ObjectAwareCrops`,
:class:`~mmselfdet.datasets.transforms.soco_views.SoCoViews`)."""
import logging
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS

from .crop_views import add_views
from .geometric import crop_resize_view
from .views import make_view, map_boxes

BOX_SOURCES = ('proposals', 'gt_bboxes')
CropBox = Tuple[int, int, int, int]


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


def sample_crop_in(region: CropBox,
                   crop_scale: Sequence[float],
                   ratio: Sequence[float],
                   max_attempts: int = 10) -> CropBox:
    """RandomResizedCrop's region sampling inside an integer ``region``.

    The crop area is a uniform fraction ``crop_scale`` of the region's area,
    its aspect ratio (w / h) log-uniform in ``ratio``, and it must fit in
    the region (like ``RandomResizedCropWithBoxes``, which does it for the
    whole image). After ``max_attempts`` misses the largest centred crop of
    the region with the aspect ratio clamped to ``ratio`` is used.

    Draws from numpy's global generator: call it from a
    ``@cache_randomness`` method.

    Returns:
        tuple[int, int, int, int]: the crop ``(x0, y0, x1, y1)``.
    """
    rx0, ry0, rx1, ry1 = region
    width, height = rx1 - rx0, ry1 - ry0
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(max_attempts):
        target_area = area * np.random.uniform(crop_scale[0], crop_scale[1])
        aspect = math.exp(np.random.uniform(log_lo, log_hi))
        crop_w = int(round(math.sqrt(target_area * aspect)))
        crop_h = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            x0 = rx0 + int(np.random.randint(0, width - crop_w + 1))
            y0 = ry0 + int(np.random.randint(0, height - crop_h + 1))
            return x0, y0, x0 + crop_w, y0 + crop_h
    region_ratio = width / height
    crop_w, crop_h = width, height
    if region_ratio < ratio[0]:
        crop_h = min(height, max(1, int(round(width / ratio[0]))))
    elif region_ratio > ratio[1]:
        crop_w = min(width, max(1, int(round(height * ratio[1]))))
    x0 = rx0 + (width - crop_w) // 2
    y0 = ry0 + (height - crop_h) // 2
    return x0, y0, x0 + crop_w, y0 + crop_h


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


_MODES = ('obj_obj_dilate', 'obj_scene', 'scene_scene')
_SELECT = ('uniform', 'score')


@TRANSFORMS.register_module()
class ObjectAwareCrops(BaseTransform):
    """Two views of one image for object-aware cropping (METHODS.md §2).

    One object box is drawn from the proposals (``box_source``), then:

    * ``'obj_obj_dilate'``: view 1 = a RandomResizedCrop inside the box;
      view 2 = the box dilated on each side by ``d`` times the image size
      (``d * W`` left and right, ``d * H`` top and bottom, one ``d`` drawn
      uniformly in ``dilation`` per sample **[ours]**), clipped to the
      image, then a RandomResizedCrop inside it;
    * ``'obj_scene'``: view 1 as above, view 2 a scene crop (a
      RandomResizedCrop of the whole image with ``crop_scale``);
    * ``'scene_scene'``: two scene crops (the MoCo baseline).

    Crop scale inside a box **[ours]**: a crop inside a region (box or
    dilated box) of area ``A`` pixels covers a uniform fraction
    ``[lo, box_crop_scale[1]]`` of ``A`` with
    ``lo = min(box_crop_scale[1], max(box_crop_scale[0], min_crop_size**2 /
    A))``, i.e. the scale range is relative to the box, as a scene crop's is
    to the image, and the lower bound is raised for small boxes so that a
    crop keeps at least ``min_crop_size**2`` source pixels (a box smaller
    than that is used whole, its aspect clamped to ``ratio``).
    ``box_crop_scale`` defaults to ``crop_scale``.

    The object is drawn uniformly among the boxes whose width and height are
    at least ``min_box_size`` source pixels (``select='uniform'``) or with
    probability proportional to the proposal score (``select='score'``;
    uniform without scores). Without such a box both views are scene crops;
    these fallbacks are counted in :attr:`num_fallbacks` and reported once
    with ``print_log``.

    Every view carries all boxes of the source (clipped to the image, empty
    ones dropped) that stay visible in it, with their ids (proposal row or
    ``gt_instances_ids``) in ``gt_instances_ids``, so boxes correspond across
    views; ``gt_bboxes_labels`` are the ground-truth labels with
    ``box_source='gt_bboxes'`` and 0 otherwise. Each view also gets
    ``object_id``: the id of the drawn box, -1 for scene crops (add it to
    ``PackViewInputs(meta_keys=...)`` to pack it).

    Required Keys:

    - img
    - proposals (np.float32) (with ``box_source='proposals'``)
    - proposals_scores (np.float32) (optional)
    - gt_bboxes (BaseBoxes | np.ndarray) (with ``box_source='gt_bboxes'``)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_instances_ids (np.int64) (optional)
    - homography_matrix (np.float32) (optional)
    - img_path, img_id, ori_shape (optional, copied into the views)

    Modified Keys:

    - views (created when missing)

    Added Keys:

    - views (dict[str, dict]): ``{view_names[0]: object view,
      view_names[1]: dilated / scene view}``, each an mmdet results dict
      (``img``, ``img_shape``, ``gt_bboxes``, ``gt_bboxes_labels``,
      ``gt_ignore_flags``, ``gt_instances_ids``, ``homography_matrix``
      (original image -> view), ``object_id``); added to the views of an
      earlier view maker (a name clash is an error).

    Args:
        mode (str): 'obj_obj_dilate', 'obj_scene' or 'scene_scene'.
            Defaults to 'obj_obj_dilate'.
        box_source (str): 'proposals' or 'gt_bboxes'. Defaults to
            'proposals'.
        select (str): 'uniform' or 'score'. Defaults to 'uniform'.
        dilation (Sequence[float]): Range of the dilation per side, a
            fraction of the image width / height. Defaults to (0.1, 0.2).
        out_size (int | Sequence[int]): Output size of both views, int or
            (w, h). Defaults to 224.
        crop_scale (Sequence[float]): Area range of scene crops, a fraction
            of the image area. Defaults to (0.2, 1.0).
        box_crop_scale (Sequence[float], optional): Area range of crops
            inside a (dilated) box, a fraction of its area, before the
            ``min_crop_size`` adjustment. Defaults to ``crop_scale``.
        ratio (Sequence[float]): Aspect-ratio (w / h) range of all crops.
            Defaults to (3 / 4, 4 / 3).
        min_box_size (float): Minimum width and height (source pixels) of a
            box to be drawn as the object. Defaults to 16.
        min_crop_size (float): Minimum side (source pixels) of the square
            area a crop inside a box keeps. Defaults to 32.
        max_attempts (int): Draws per crop before its central fallback.
            Defaults to 10.
        interpolation (str): ``mmcv.imresize`` interpolation.
            Defaults to 'bilinear'.
        view_names (Sequence[str]): Names of the two views.
            Defaults to ('view1', 'view2').
    """

    def __init__(self,
                 mode: str = 'obj_obj_dilate',
                 box_source: str = 'proposals',
                 select: str = 'uniform',
                 dilation: Sequence[float] = (0.1, 0.2),
                 out_size: Union[int, Sequence[int]] = 224,
                 crop_scale: Sequence[float] = (0.2, 1.0),
                 box_crop_scale: Optional[Sequence[float]] = None,
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 min_box_size: float = 16.0,
                 min_crop_size: float = 32.0,
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 view_names: Sequence[str] = ('view1', 'view2')) -> None:
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        if box_source not in BOX_SOURCES:
            raise ValueError(f'box_source must be one of {BOX_SOURCES}, got '
                             f'{box_source!r}')
        if select not in _SELECT:
            raise ValueError(f'select must be one of {_SELECT}, got '
                             f'{select!r}')
        if len(dilation) != 2 or not 0 <= dilation[0] <= dilation[1]:
            raise ValueError(f'dilation must be (min, max) with 0 <= min <= '
                             f'max, got {dilation}')
        if interpolation not in cv2_interp_codes:
            raise ValueError(f'interpolation must be one of '
                             f'{sorted(cv2_interp_codes)}, got '
                             f'{interpolation!r}')
        if len(view_names) != 2 or len(set(view_names)) != 2:
            raise ValueError(f'view_names must be two distinct names, got '
                             f'{view_names}')
        if min_box_size < 0 or min_crop_size < 0 or max_attempts < 0:
            raise ValueError('min_box_size, min_crop_size and max_attempts '
                             'must be >= 0')
        self.mode = mode
        self.box_source = box_source
        self.select = select
        self.dilation = (float(dilation[0]), float(dilation[1]))
        self.out_size = _as_wh(out_size, 'out_size')
        self.crop_scale = _check_range('crop_scale', crop_scale, 1.0)
        self.box_crop_scale = self.crop_scale if box_crop_scale is None \
            else _check_range('box_crop_scale', box_crop_scale, 1.0)
        self.ratio = _check_range('ratio', ratio)
        self.min_box_size = float(min_box_size)
        self.min_crop_size = float(min_crop_size)
        self.max_attempts = int(max_attempts)
        self.interpolation = interpolation
        self.view_names = tuple(view_names)
        self.num_fallbacks = 0
        self._reported = False

    def _box_scale(self, region: CropBox) -> Tuple[float, float]:
        """Crop-area range inside ``region`` (see the class docstring)."""
        area = max(1, (region[2] - region[0]) * (region[3] - region[1]))
        hi = self.box_crop_scale[1]
        lo = min(hi, max(self.box_crop_scale[0], self.min_crop_size**2 / area))
        return lo, hi

    def _crop_in_box(self, box: np.ndarray, width: int,
                     height: int) -> CropBox:
        region = int_region(box, width, height)
        return sample_crop_in(region, self._box_scale(region), self.ratio,
                              self.max_attempts)

    @cache_randomness
    def _sample_params(self, boxes: np.ndarray, scores: Optional[np.ndarray],
                       width: int, height: int) -> Dict:
        """Draw the object and the two crop regions.

        Returns:
            dict: ``index`` (row of the object in ``boxes``, -1 for scene
            crops), ``crops`` (two integer x1y1x2y2 regions) and
            ``fallback`` (no eligible box although one was wanted).
        """
        scene = (0, 0, width, height)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        eligible = np.nonzero((widths >= self.min_box_size)
                              & (heights >= self.min_box_size))[0]
        if self.mode == 'scene_scene' or len(eligible) == 0:
            crops = [sample_crop_in(scene, self.crop_scale, self.ratio,
                                    self.max_attempts) for _ in range(2)]
            return dict(index=-1, crops=crops,
                        fallback=self.mode != 'scene_scene')
        prob = None
        if self.select == 'score' and scores is not None:
            weights = np.clip(scores[eligible].astype(np.float64), 0, None)
            if weights.sum() > 0:
                prob = weights / weights.sum()
        index = int(np.random.choice(eligible, p=prob))
        box = boxes[index]
        crop1 = self._crop_in_box(box, width, height)
        if self.mode == 'obj_scene':
            crop2 = sample_crop_in(scene, self.crop_scale, self.ratio,
                                   self.max_attempts)
        else:
            d = np.random.uniform(*self.dilation)
            dilated = box + np.array([-d * width, -d * height, d * width,
                                      d * height])
            crop2 = self._crop_in_box(dilated, width, height)
        return dict(index=index, crops=[crop1, crop2], fallback=False)

    def transform(self, results: dict) -> dict:
        """Make the two views.

        Args:
            results (dict): Result dict with the image and its boxes.

        Returns:
            dict: ``results`` with ``views`` added.
        """
        height, width = results['img'].shape[:2]
        if self.mode == 'scene_scene' and results.get(self.box_source) is None:
            source = SourceBoxes(np.zeros((0, 4), np.float32),
                                 np.zeros(0, np.int64))
        else:
            source = collect_boxes(results, self.box_source)
        params = self._sample_params(source.boxes, source.scores, width,
                                     height)
        if params['fallback']:
            self.num_fallbacks += 1
            if not self._reported:
                self._reported = True
                print_log(
                    f'ObjectAwareCrops: no {self.box_source} box of at least '
                    f'{self.min_box_size} px in '
                    f'{results.get("img_path", "an image")}; using two scene '
                    'crops. Further cases are only counted in '
                    'ObjectAwareCrops.num_fallbacks.',
                    logger='current', level=logging.WARNING)
        object_id = -1 if params['index'] < 0 else \
            int(source.ids[params['index']])
        views = {}
        for name, crop in zip(self.view_names, params['crops']):
            view = boxes_view(results, crop, self.out_size, source,
                              interpolation=self.interpolation)
            view['object_id'] = object_id
            views[name] = view
        add_views(results, views, self.__class__.__name__)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'mode={self.mode!r}, '
                f'box_source={self.box_source!r}, '
                f'select={self.select!r}, '
                f'dilation={self.dilation}, '
                f'out_size={self.out_size}, '
                f'crop_scale={self.crop_scale}, '
                f'box_crop_scale={self.box_crop_scale}, '
                f'ratio={self.ratio}, '
                f'min_box_size={self.min_box_size}, '
                f'min_crop_size={self.min_crop_size}, '
                f'max_attempts={self.max_attempts}, '
                f'interpolation={self.interpolation!r}, '
                f'view_names={self.view_names})')
