# Copyright (c) mmselfdet contributors. All rights reserved.
"""The three views of SoCo (docs/methods.md §4) with the proposals they share."""
import logging
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS

from .crop_views import add_views
from .box_sources import (BOX_SOURCES, SourceBoxes, _check_range, boxes_view,
                          collect_boxes, visible_mask)
from .box_sources import visible_fraction  # noqa: F401  (former home)
from .geometric import sample_resized_crop

_V3_CROPS = ('independent', 'from_v2')
#: 'none': views only, no box (the end-to-end variant finds its boxes in the
#: model, :class:`~mmselfdet.models.HeatMapProposer`)
SOCO_BOX_SOURCES = BOX_SOURCES + ('none', )


_SELECTIONS = ('per_pair', 'joint')


@TRANSFORMS.register_module()
class SoCoViews(BaseTransform):
    """SoCo's views V1, V2, V3 and the proposals of the pairs V1-V2, V1-V3.

    * V1: the whole image resized to ``v1_size`` x ``v1_size`` (aspect not
      kept);
    * V2: a RandomResizedCrop (``crop_scale``, ``ratio``) resized to
      ``v2_size``;
    * V3: an independent RandomResizedCrop resized to ``v3_size``
      (``v3_crop='independent'``, docs/methods.md), or V2's crop region resized
      to ``v3_size`` (``'from_v2'``).

    A box (from ``box_source``, clipped to the image, empty ones dropped,
    width and height at least ``min_box_size`` source pixels) is visible in
    a crop when any part of it lies inside (``min_visible=0``, the official
    ``get_overlap_props``) or, with ``min_visible > 0``, when at least that
    fraction of its area does; every box is visible in V1.

    ``box_selection='per_pair'`` (default, the official
    ``ImageFolderImageAsymBboxAwareMultiJitter1Cutout.__getitem__``): up to
    ``num_boxes`` (K) boxes visible in V2 are drawn at random without
    replacement for the pair V1-V2, and separately K visible in V3 for
    V1-V3. With ``pad`` each pair's lists (V1's copies and the partner's)
    are padded to K by repeating drawn boxes at random, each list on its
    own, as the official ``pad_bboxs_with_common``. V1 carries both pairs'
    copies (V1-V2 first), so a box drawn for both pairs has two V1 copies
    (jittered independently by a later ``RandomBoxJitter``), and every
    view gets ``gt_instances_pairs``: the pair each box belongs to (1:
    V1-V2, 2: V1-V3); the model matches a V1 box only within its pair. The
    crops are drawn again (up to ``max_retries`` times) while a pair has
    fewer than ``max(K // 2, 1)`` boxes, the bound halved after each miss
    (official ``least_common``, ``max_tries=5``).

    ``box_selection='joint'`` **[ours]**: K boxes visible in V2 **and** V3
    (with ``min_visible=0.5``: half of the area inside both crops), the
    same boxes in all three views, no ``gt_instances_pairs``; crops are
    redrawn while none is visible.

    A pair without any visible box after the retries (or an image without
    any usable box) uses the whole image as its box, with id -1; such
    fallbacks are counted in :attr:`num_fallbacks` (crop redraws in
    :attr:`num_retries`) and reported once with ``print_log``; the
    transform never fails for lack of boxes. Each view gets its boxes
    mapped into it by its geometry (and clipped to it), with the
    ``gt_instances_ids`` of the source (proposal row, or the ground truth's
    ``gt_instances_ids``).

    SoCo's proposal filters (size, aspect, area) belong to the proposal
    source; its V1 box jitter is ``RandomBoxJitter(mode='relative',
    prob=0.5, views=['v1'])`` after this transform, and its cutout
    ``RandomCutoutInBoxes`` in the V2 / V3 pipelines.

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
      ``gt_instances_pairs`` (per-pair selection), ``homography_matrix``
      original image -> view); added to the views of an earlier view maker
      (a name clash is an error).

    Args:
        num_boxes (int): K, boxes per pair. Defaults to 4.
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
        box_selection (str): 'per_pair' or 'joint'. Defaults to
            'per_pair'.
        min_visible (float): Fraction of a box's area that must be inside a
            crop, in [0, 1]; 0 means any overlap. Defaults to 0.
        pad (bool): Pad each list to K by repetition. Defaults to True.
        min_box_size (float): Minimum width and height (source pixels) of a
            usable box. Defaults to 1.0.
        max_retries (int): Crop redraws (see above). Defaults to 4.
        max_attempts (int): Draws per crop before its central fallback.
            Defaults to 10.
        v3_crop (str): 'independent' or 'from_v2'. Defaults to
            'independent'.
        interpolation (str): ``mmcv.imresize`` interpolation.
            Defaults to 'bilinear'.
        view_names (Sequence[str]): Names of V1, V2, V3.
            Defaults to ('v1', 'v2', 'v3').
        raw_view (str, optional): Name of a fourth view: the whole image
            resized to ``raw_size`` x ``raw_size`` without boxes, packed
            with no pixel augmentation, from which the end-to-end variant
            cuts its extra crops (``SoCo(extra_crops=dict(source='raw'))``).
            Defaults to None (no such view).
        raw_size (int, optional): Side of the raw view. Defaults to
            ``v1_size``.
    """

    def __init__(self,
                 num_boxes: int = 4,
                 box_source: str = 'proposals',
                 v1_size: int = 224,
                 v2_size: int = 224,
                 v3_size: int = 112,
                 crop_scale: Sequence[float] = (0.5, 1.0),
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 box_selection: str = 'per_pair',
                 min_visible: float = 0.0,
                 pad: bool = True,
                 min_box_size: float = 1.0,
                 max_retries: int = 4,
                 max_attempts: int = 10,
                 v3_crop: str = 'independent',
                 interpolation: str = 'bilinear',
                 view_names: Sequence[str] = ('v1', 'v2', 'v3'),
                 raw_view: Optional[str] = None,
                 raw_size: Optional[int] = None) -> None:
        if num_boxes < 1:
            raise ValueError(f'num_boxes must be >= 1, got {num_boxes}')
        if box_source not in SOCO_BOX_SOURCES:
            raise ValueError(f'box_source must be one of {SOCO_BOX_SOURCES}, '
                             f'got {box_source!r}')
        if min(v1_size, v2_size, v3_size) <= 0:
            raise ValueError('view sizes must be positive')
        if box_selection not in _SELECTIONS:
            raise ValueError(f'box_selection must be one of {_SELECTIONS}, '
                             f'got {box_selection!r}')
        if not 0 <= min_visible <= 1:
            raise ValueError(f'min_visible must be in [0, 1], got '
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
        self.box_selection = box_selection
        self.min_visible = float(min_visible)
        self.pad = bool(pad)
        self.min_box_size = float(min_box_size)
        self.max_retries = int(max_retries)
        self.max_attempts = int(max_attempts)
        self.v3_crop = v3_crop
        self.interpolation = interpolation
        self.view_names = tuple(view_names)
        if raw_view is not None and raw_view in self.view_names:
            raise ValueError(f'raw_view {raw_view!r} must differ from '
                             f'view_names {self.view_names}')
        self.raw_view = raw_view
        self.raw_size = int(v1_size if raw_size is None else raw_size)
        if self.raw_size <= 0:
            raise ValueError(f'raw_size must be positive, got {raw_size}')
        self.num_fallbacks = 0
        self.num_retries = 0
        self._reported = False

    def _draw_crops(self, width: int, height: int):
        scene = (0, 0, width, height)
        crop2 = sample_resized_crop(scene, self.crop_scale, self.ratio,
                                    self.max_attempts)
        crop3 = crop2 if self.v3_crop == 'from_v2' else sample_resized_crop(
            scene, self.crop_scale, self.ratio, self.max_attempts)
        return crop2, crop3

    def _draw(self, candidates: np.ndarray) -> np.ndarray:
        num = min(self.num_boxes, len(candidates))
        return np.random.choice(candidates, num, replace=False).astype(
            np.int64)

    def _padded(self, rows: np.ndarray) -> np.ndarray:
        if not self.pad or len(rows) >= self.num_boxes or len(rows) == 0:
            return rows
        extra = np.random.choice(rows, self.num_boxes - len(rows))
        return np.concatenate([rows, extra]).astype(np.int64)

    @cache_randomness
    def _sample_params(self, boxes: np.ndarray, width: int,
                       height: int) -> Dict:
        """Draw the V2 / V3 crops and the boxes of each pair.

        Returns:
            dict: ``crops`` (V2 and V3 integer x1y1x2y2 regions), ``rows``
            (per pair ``(V1 copies, partner)`` rows of ``boxes``, before
            padding; empty for the whole-image fallback; with 'joint' both
            pairs share one list) and ``retries`` (crop redraws used).
        """
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        usable = (widths >= self.min_box_size) & (heights >= self.min_box_size)
        tries = 1 + (self.max_retries if usable.any() else 0)
        least = max(self.num_boxes // 2, 1)
        for attempt in range(tries):
            crop2, crop3 = self._draw_crops(width, height)
            seen = [usable & visible_mask(boxes, crop, self.min_visible)
                    for crop in (crop2, crop3)]
            if self.box_selection == 'joint':
                rows = self._draw(np.nonzero(seen[0] & seen[1])[0])
                pairs = [rows, rows]
                done = len(rows) > 0
            else:
                pairs = [self._draw(np.nonzero(m)[0]) for m in seen]
                done = min(len(r) for r in pairs) >= least
                least = max(least // 2, 1)
            if done or attempt == tries - 1:
                return dict(crops=(crop2, crop3), rows=pairs,
                            retries=attempt)

    def transform(self, results: dict) -> dict:
        """Make V1, V2, V3 with their boxes.

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
            empty = np.zeros(0, np.int64)
            self._add(results, crops, source, [empty] * 3, None)
            return results
        source = collect_boxes(results, self.box_source)
        params = self._sample_params(source.boxes, width, height)
        self.num_retries += params['retries']
        # the whole image (id -1) is the last source row, for fallbacks
        whole = len(source)
        source = SourceBoxes(
            np.concatenate([source.boxes,
                            np.array([[0, 0, width, height]], np.float32)]),
            np.concatenate([source.ids, np.array([-1], np.int64)]),
            labels=None if source.labels is None else np.concatenate(
                [source.labels, np.zeros(1, np.int64)]))
        pairs = [r if len(r) else np.array([whole], np.int64)
                 for r in params['rows']]
        if any(len(r) == 0 for r in params['rows']):
            self._fallback(results, params['retries'])
        crops = ((0, 0, width, height), ) + tuple(params['crops'])
        if self.box_selection == 'joint':
            v1 = self._padded(pairs[0])
            rows = [v1, self._padded(v1), self._padded(v1)]
            tags = None
        else:
            v1 = [self._padded(r) for r in pairs]
            rows = [np.concatenate(v1)] + [self._padded(r) for r in pairs]
            tags = [np.repeat([1, 2], [len(v1[0]), len(v1[1])]),
                    np.ones(len(rows[1]), np.int64),
                    np.full(len(rows[2]), 2, np.int64)]
        self._add(results, crops, source, rows, tags)
        return results

    def _fallback(self, results: dict, retries: int) -> None:
        self.num_fallbacks += 1
        if not self._reported:
            self._reported = True
            print_log(
                f'SoCoViews: no {self.box_source} box of '
                f'{results.get("img_path", "an image")} is visible in a '
                f'crop after {retries} crop retries; using the whole image '
                'as the box of that pair. Further cases are only counted in '
                'SoCoViews.num_fallbacks.',
                logger='current', level=logging.WARNING)

    @cache_randomness
    def _sample_crops(self, width: int, height: int):
        return self._draw_crops(width, height)

    def _add(self, results: dict, crops, source: SourceBoxes,
             rows: Sequence[np.ndarray],
             tags: Optional[Sequence[np.ndarray]]) -> None:
        """Make the three views of ``crops`` with ``source`` rows ``rows``
        (one array per view; ``tags``: the pair of each row, or None) and
        add them to ``results['views']``."""
        sizes = (self.v1_size, self.v2_size, self.v3_size)
        views = {}
        for name, crop, size, view_rows in zip(self.view_names, crops, sizes,
                                               rows):
            view = boxes_view(results, crop, (size, size), source,
                              select=view_rows,
                              interpolation=self.interpolation,
                              min_box_size=0.0)
            if len(view['gt_instances_ids']) != len(view_rows):
                raise RuntimeError(  # a visible box is never empty
                    f'SoCoViews: a selected box vanished from view {name}')
            views[name] = view
        if tags is not None:
            for view, view_tags in zip(views.values(), tags):
                view['gt_instances_pairs'] = np.asarray(view_tags, np.int64)
        if self.raw_view is not None:
            height, width = results['img'].shape[:2]
            views[self.raw_view] = boxes_view(
                results, (0, 0, width, height),
                (self.raw_size, self.raw_size), source,
                select=np.zeros(0, np.int64),
                interpolation=self.interpolation)
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
                f'box_selection={self.box_selection!r}, '
                f'min_visible={self.min_visible}, '
                f'pad={self.pad}, '
                f'min_box_size={self.min_box_size}, '
                f'max_retries={self.max_retries}, '
                f'max_attempts={self.max_attempts}, '
                f'v3_crop={self.v3_crop!r}, '
                f'interpolation={self.interpolation!r}, '
                f'view_names={self.view_names}, '
                f'raw_view={self.raw_view!r}, '
                f'raw_size={self.raw_size})')
