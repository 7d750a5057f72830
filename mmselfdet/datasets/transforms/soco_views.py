# Copyright (c) mmselfdet contributors. All rights reserved.
"""The three views of SoCo (METHODS.md §4) with the proposals they share."""
import logging
from typing import Dict, Sequence

import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS

from .crop_views import add_views
from .box_sources import (BOX_SOURCES, SourceBoxes, _check_range, boxes_view,
                          collect_boxes, sample_crop_in)

_V3_CROPS = ('independent', 'from_v2')
#: 'none': views only, no box (the end-to-end variant finds its boxes in the
#: model, :class:`~mmselfdet.models.HeatMapProposer`)
SOCO_BOX_SOURCES = BOX_SOURCES + ('none', )
_KEYED = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags',
          'gt_instances_ids')


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


@TRANSFORMS.register_module()
class SoCoViews(BaseTransform):
    """SoCo's views V1, V2, V3 and up to K proposals seen in all three.

    * V1: the whole image resized to ``v1_size`` x ``v1_size`` (aspect not
      kept);
    * V2: a RandomResizedCrop (``crop_scale``, ``ratio``) resized to
      ``v2_size``;
    * V3: an independent RandomResizedCrop resized to ``v3_size``
      (``v3_crop='independent'``, METHODS.md), or V2's crop region resized
      to ``v3_size`` (``'from_v2'``).

    Visibility **[ours]**: a box is visible in a crop when the part of the
    box inside the crop region keeps at least ``min_visible`` of the box's
    area (default half); every box is visible in V1. Among the boxes (from
    ``box_source``, clipped to the image, empty ones dropped, width and
    height at least ``min_box_size`` source pixels) visible in V2 and V3,
    ``num_boxes`` are drawn at random without replacement. Each view gets
    exactly those boxes, in the same order, mapped into it by its geometry
    (and clipped to it), with the same ``gt_instances_ids`` (proposal row,
    or ``gt_instances_ids`` of the ground truth).

    Fewer visible boxes than ``num_boxes``: all visible boxes are used
    (fewer than K boxes; the model handles a variable number). None
    visible: the V2 / V3 crops are drawn again, up to ``max_retries`` times;
    then (or at once when the image has no usable box at all) the whole
    image is the single box, with id -1. Such fallbacks are counted in
    :attr:`num_fallbacks` (retries in :attr:`num_retries`) and reported
    once with ``print_log``; the transform never fails for lack of boxes.

    SoCo's proposal filters (size, aspect, area) belong to the proposal
    source; its V1 box jitter is ``RandomBoxJitter(mode='relative',
    prob=0.5, views=['v1'])`` after this transform.

    Required Keys:

    - img
    - proposals (np.float32) (with ``box_source='proposals'``)
    - gt_bboxes (BaseBoxes | np.ndarray) (with ``box_source='gt_bboxes'``)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_instances_ids (np.int64) (optional)
    - homography_matrix (np.float32) (optional)
    - img_path, img_id, ori_shape (optional, copied into the views)

    Modified Keys:

    - views (created when missing)

    Added Keys:

    - views (dict[str, dict]): ``{v1, v2, v3}`` (``view_names``), each an
      mmdet results dict (``img``, ``img_shape``, ``gt_bboxes``,
      ``gt_bboxes_labels``, ``gt_ignore_flags``, ``gt_instances_ids``,
      ``homography_matrix`` original image -> view); added to the views of
      an earlier view maker (a name clash is an error).

    Args:
        num_boxes (int): K, boxes per view. Defaults to 4.
        box_source (str): 'proposals', 'gt_bboxes' or 'none' (the three
            views without boxes, for the end-to-end variant whose model
            proposes its own). Defaults to 'proposals'.
        v1_size (int): Side of V1. Defaults to 224.
        v2_size (int): Side of V2. Defaults to 224.
        v3_size (int): Side of V3. Defaults to 112.
        crop_scale (Sequence[float]): Area range of the V2 / V3 crops, a
            fraction of the image area. Defaults to (0.5, 1.0).
        ratio (Sequence[float]): Aspect-ratio (w / h) range of the crops.
            Defaults to (3 / 4, 4 / 3).
        min_visible (float): Minimum fraction of a box's area inside a
            crop, in (0, 1]. Defaults to 0.5.
        min_box_size (float): Minimum width and height (source pixels) of a
            usable box. Defaults to 1.0.
        max_retries (int): Crop redraws when no box is visible.
            Defaults to 10.
        max_attempts (int): Draws per crop before its central fallback.
            Defaults to 10.
        v3_crop (str): 'independent' or 'from_v2'. Defaults to
            'independent'.
        interpolation (str): ``mmcv.imresize`` interpolation.
            Defaults to 'bilinear'.
        view_names (Sequence[str]): Names of V1, V2, V3.
            Defaults to ('v1', 'v2', 'v3').
    """

    def __init__(self,
                 num_boxes: int = 4,
                 box_source: str = 'proposals',
                 v1_size: int = 224,
                 v2_size: int = 224,
                 v3_size: int = 112,
                 crop_scale: Sequence[float] = (0.5, 1.0),
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 min_visible: float = 0.5,
                 min_box_size: float = 1.0,
                 max_retries: int = 10,
                 max_attempts: int = 10,
                 v3_crop: str = 'independent',
                 interpolation: str = 'bilinear',
                 view_names: Sequence[str] = ('v1', 'v2', 'v3')) -> None:
        if num_boxes < 1:
            raise ValueError(f'num_boxes must be >= 1, got {num_boxes}')
        if box_source not in SOCO_BOX_SOURCES:
            raise ValueError(f'box_source must be one of {SOCO_BOX_SOURCES}, '
                             f'got {box_source!r}')
        if min(v1_size, v2_size, v3_size) <= 0:
            raise ValueError('view sizes must be positive')
        if not 0 < min_visible <= 1:
            raise ValueError(f'min_visible must be in (0, 1], got '
                             f'{min_visible}')
        if min_box_size < 0 or max_retries < 0 or max_attempts < 0:
            raise ValueError('min_box_size, max_retries and max_attempts '
                             'must be >= 0')
        if v3_crop not in _V3_CROPS:
            raise ValueError(f'v3_crop must be one of {_V3_CROPS}, got '
                             f'{v3_crop!r}')
        if interpolation not in cv2_interp_codes:
            raise ValueError(f'interpolation must be one of '
                             f'{sorted(cv2_interp_codes)}, got '
                             f'{interpolation!r}')
        if len(view_names) != 3 or len(set(view_names)) != 3:
            raise ValueError(f'view_names must be three distinct names, got '
                             f'{view_names}')
        self.num_boxes = int(num_boxes)
        self.box_source = box_source
        self.v1_size = int(v1_size)
        self.v2_size = int(v2_size)
        self.v3_size = int(v3_size)
        self.crop_scale = _check_range('crop_scale', crop_scale, 1.0)
        self.ratio = _check_range('ratio', ratio)
        self.min_visible = float(min_visible)
        self.min_box_size = float(min_box_size)
        self.max_retries = int(max_retries)
        self.max_attempts = int(max_attempts)
        self.v3_crop = v3_crop
        self.interpolation = interpolation
        self.view_names = tuple(view_names)
        self.num_fallbacks = 0
        self.num_retries = 0
        self._reported = False

    def _draw_crops(self, width: int, height: int):
        scene = (0, 0, width, height)
        crop2 = sample_crop_in(scene, self.crop_scale, self.ratio,
                               self.max_attempts)
        crop3 = crop2 if self.v3_crop == 'from_v2' else sample_crop_in(
            scene, self.crop_scale, self.ratio, self.max_attempts)
        return crop2, crop3

    @cache_randomness
    def _sample_params(self, boxes: np.ndarray, width: int,
                       height: int) -> Dict:
        """Draw the V2 / V3 crops and the boxes.

        Returns:
            dict: ``crops`` (V2 and V3 integer x1y1x2y2 regions), ``rows``
            (selected rows of ``boxes``, empty for the whole-image
            fallback) and ``retries`` (crop redraws used).
        """
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        usable = (widths >= self.min_box_size) & (heights >= self.min_box_size)
        tries = 1 + (self.max_retries if usable.any() else 0)
        for attempt in range(tries):
            crop2, crop3 = self._draw_crops(width, height)
            visible = usable.copy()
            for crop in (crop2, crop3):
                visible &= visible_fraction(boxes, crop) >= self.min_visible
            candidates = np.nonzero(visible)[0]
            if len(candidates):
                num = min(self.num_boxes, len(candidates))
                rows = np.random.choice(candidates, num, replace=False)
                return dict(crops=(crop2, crop3), rows=rows.astype(np.int64),
                            retries=attempt)
        return dict(crops=(crop2, crop3), rows=np.zeros(0, np.int64),
                    retries=tries - 1)

    def transform(self, results: dict) -> dict:
        """Make V1, V2, V3 with their shared boxes.

        Args:
            results (dict): Result dict with the image and its boxes.

        Returns:
            dict: ``results`` with ``views`` added.
        """
        height, width = results['img'].shape[:2]
        if self.box_source == 'none':
            source = SourceBoxes(np.zeros((0, 4), np.float32),
                                 np.zeros(0, np.int64))
            crops = ((0, 0, width, height), ) + tuple(
                self._sample_crops(width, height))
            self._add(results, crops, source, np.zeros(0, np.int64))
            return results
        source = collect_boxes(results, self.box_source)
        params = self._sample_params(source.boxes, width, height)
        self.num_retries += params['retries']
        rows = params['rows']
        if len(rows) == 0:
            self.num_fallbacks += 1
            if not self._reported:
                self._reported = True
                print_log(
                    f'SoCoViews: no {self.box_source} box of '
                    f'{results.get("img_path", "an image")} is visible in '
                    f'V2 and V3 after {params["retries"]} crop retries; '
                    'using the whole image as the box. Further cases are '
                    'only counted in SoCoViews.num_fallbacks.',
                    logger='current', level=logging.WARNING)
            source = SourceBoxes(
                np.array([[0, 0, width, height]], np.float32),
                np.array([-1], np.int64))
            rows = np.zeros(1, np.int64)
        crops = ((0, 0, width, height), ) + tuple(params['crops'])
        self._add(results, crops, source, rows)
        return results

    @cache_randomness
    def _sample_crops(self, width: int, height: int):
        return self._draw_crops(width, height)

    def _add(self, results: dict, crops, source: SourceBoxes,
             rows: np.ndarray) -> None:
        """Make the three views of ``crops`` with ``source`` rows ``rows``
        and add them to ``results['views']``."""
        sizes = (self.v1_size, self.v2_size, self.v3_size)
        views = {
            name: boxes_view(results, crop, (size, size), source, select=rows,
                             interpolation=self.interpolation,
                             min_box_size=0.0)
            for name, crop, size in zip(self.view_names, crops, sizes)
        }
        # a visible box has positive area in every view; keep the ids
        # common to all views anyway so correspondence can never break
        common = source.ids[rows]
        for view in views.values():
            common = common[np.isin(common, view['gt_instances_ids'])]
        for view in views.values():
            keep = np.isin(view['gt_instances_ids'], common)
            if not keep.all():
                for key in _KEYED:
                    view[key] = view[key][keep]
        add_views(results, views, self.__class__.__name__)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'num_boxes={self.num_boxes}, '
                f'box_source={self.box_source!r}, '
                f'v1_size={self.v1_size}, '
                f'v2_size={self.v2_size}, '
                f'v3_size={self.v3_size}, '
                f'crop_scale={self.crop_scale}, '
                f'ratio={self.ratio}, '
                f'min_visible={self.min_visible}, '
                f'min_box_size={self.min_box_size}, '
                f'max_retries={self.max_retries}, '
                f'max_attempts={self.max_attempts}, '
                f'v3_crop={self.v3_crop!r}, '
                f'interpolation={self.interpolation!r}, '
                f'view_names={self.view_names})')
