# Copyright (c) mmselfdet contributors. All rights reserved.
"""Object-aware crops (Mishra et al., TMLR 2022). The box helpers shared with
:class:`~mmselfdet.datasets.transforms.soco_views.SoCoViews` live in
:mod:`.box_sources` (re-exported here)."""
import logging
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS
from mmselfdet.structures.box_ops import box_shape_masks

from .box_sources import (_DILATION_MODES, BOX_SOURCES, CropBox,
                          SourceBoxes, _as_wh, _check_range, add_context,
                          boxes_view, collect_boxes, dilate_box, int_region,
                          sample_crop_in)
from .crop_views import add_views
from .geometric import sample_resized_crop

__all__ = ['ObjectAwareCrops', 'SourceBoxes', 'collect_boxes', 'boxes_view',
           'int_region', 'sample_crop_in', 'sample_resized_crop', 'dilate_box',
           'add_context', 'BOX_SOURCES']


_MODES = ('obj_obj_dilate', 'obj_scene', 'scene_scene')
_SELECT = ('uniform', 'score')
_SMALL_BOX = ('context', 'min_crop')


@TRANSFORMS.register_module()
class ObjectAwareCrops(BaseTransform):
    """Two views of one image for object-aware cropping (docs/methods.md §2).

    One object box is drawn from the proposals (``box_source``), then:

    * ``'obj_obj_dilate'``: view 1 = a RandomResizedCrop inside the box;
      view 2 = the box dilated by ``d`` times the image size in total
      (``d * W / 2`` left and right, ``d * H / 2`` top and bottom, one
      ``d`` drawn uniformly in ``dilation`` per sample; the official
      code's coordinate-proportional rule with ``dilation_mode='coords'``,
      see :func:`dilate_box`), clipped to the image, then a
      RandomResizedCrop inside it;
    * ``'obj_scene'``: view 1 as above, view 2 a scene crop (a
      RandomResizedCrop of the whole image with ``crop_scale``);
    * ``'scene_scene'``: two scene crops (the MoCo baseline).

    Query / key order: with probability ``swap_prob`` (0.5, as the official
    code's ``__getitem__`` returns (object, dilated) or (dilated, object)
    at random) the object crop goes to ``view_names[1]`` and the dilated
    (or scene) crop to ``view_names[0]``, so with MoCo each kind of crop is
    the query half of the time.

    Small boxes (``small_box``): a RandomResizedCrop with a plain (0.2, 1)
    area fraction of a small box is an upscaled fragment of it, so

    * ``'context'`` (default, the official code): a region (box or dilated
      box) narrower or lower than ``context_size`` (default ``out_size``,
      the official 224) first gains half of it on each side in that
      direction (:func:`add_context`); the crop inside then covers a
      uniform fraction ``box_crop_scale`` of the region's area;
    * ``'min_crop'`` **[ours]**: no context; a crop inside a region of
      area ``A`` covers a uniform fraction ``[lo, box_crop_scale[1]]`` of
      ``A`` with ``lo = min(box_crop_scale[1], max(box_crop_scale[0],
      min_crop_size**2 / A))``, so that it keeps at least
      ``min_crop_size**2`` source pixels (a box smaller than that is used
      whole, its aspect clamped to ``ratio``).

    ``box_crop_scale`` defaults to ``crop_scale``.

    Proposal filter, then the draw **[ours]** (the paper does not say; the
    official code draws among its OpenImages boxes unfiltered): a box is
    eligible when its width and height are at least ``min_box_size`` source
    pixels and its aspect ``w / h`` lies in ``aspect_range`` (SoCo's shape
    filter; None switches it off); with ``topk`` only the ``topk``
    eligible boxes of highest score (without scores: the first ``topk``
    rows, a proposal file's rank order) stay eligible. The object is then
    drawn uniformly among the eligible boxes (``select='uniform'``) or
    with probability proportional to the proposal score
    (``select='score'``; uniform without scores). Without such a box both
    views are scene crops;
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
        dilation (Sequence[float]): Range of ``d``, the total growth as a
            fraction of the image width / height. Defaults to (0.1, 0.2)
            (the paper's 10-20 %; the official code uses 0.2).
        dilation_mode (str): 'image' (growth ``d`` times the image size)
            or 'coords' (the official ``x1 (1 - d)``, ``x2 (1 + d)``).
            Defaults to 'image'.
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
        aspect_range (Sequence[float], optional): Range of ``w / h`` of a
            box to be drawn. Defaults to (1 / 3, 3) (SoCo's filter).
        topk (int, optional): Keep only the ``topk`` best-scored eligible
            boxes. Defaults to None (all).
        small_box (str): 'context' or 'min_crop' (see above). Defaults to
            'context'.
        context_size (int | Sequence[int], optional): Box size (w, h) below
            which ``'context'`` adds context, half of it per side. Defaults
            to ``out_size``.
        min_crop_size (float): With ``small_box='min_crop'``, the minimum
            side (source pixels) of the square area a crop inside a box
            keeps. Defaults to 32.
        max_attempts (int): Draws per crop before its central fallback.
            Defaults to 10.
        interpolation (str): ``mmcv.imresize`` interpolation.
            Defaults to 'bilinear'.
        view_names (Sequence[str]): Names of the two views.
            Defaults to ('view1', 'view2').
        swap_prob (float): Probability of giving the object crop to the
            second view name and the dilated / scene crop to the first.
            Defaults to 0.5 (the official code); 0 always makes the object
            crop ``view_names[0]``.
    """

    def __init__(self,
                 mode: str = 'obj_obj_dilate',
                 box_source: str = 'proposals',
                 select: str = 'uniform',
                 dilation: Sequence[float] = (0.1, 0.2),
                 dilation_mode: str = 'image',
                 out_size: Union[int, Sequence[int]] = 224,
                 crop_scale: Sequence[float] = (0.2, 1.0),
                 box_crop_scale: Optional[Sequence[float]] = None,
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 min_box_size: float = 16.0,
                 aspect_range: Optional[Sequence[float]] = (1 / 3, 3),
                 topk: Optional[int] = None,
                 small_box: str = 'context',
                 context_size: Optional[Union[int, Sequence[int]]] = None,
                 min_crop_size: float = 32.0,
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 view_names: Sequence[str] = ('view1', 'view2'),
                 swap_prob: float = 0.5) -> None:
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
        if dilation_mode not in _DILATION_MODES:
            raise ValueError(f'dilation_mode must be one of '
                             f'{_DILATION_MODES}, got {dilation_mode!r}')
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
        if topk is not None and int(topk) < 1:
            raise ValueError(f'topk must be None or >= 1, got {topk}')
        if small_box not in _SMALL_BOX:
            raise ValueError(f'small_box must be one of {_SMALL_BOX}, got '
                             f'{small_box!r}')
        if not 0 <= swap_prob <= 1:
            raise ValueError(f'swap_prob must be in [0, 1], got {swap_prob}')
        self.mode = mode
        self.swap_prob = float(swap_prob)
        self.box_source = box_source
        self.select = select
        self.dilation = (float(dilation[0]), float(dilation[1]))
        self.dilation_mode = dilation_mode
        self.out_size = _as_wh(out_size, 'out_size')
        self.crop_scale = _check_range('crop_scale', crop_scale, 1.0)
        self.box_crop_scale = self.crop_scale if box_crop_scale is None \
            else _check_range('box_crop_scale', box_crop_scale, 1.0)
        self.ratio = _check_range('ratio', ratio)
        self.min_box_size = float(min_box_size)
        self.aspect_range = None if aspect_range is None else \
            _check_range('aspect_range', aspect_range)
        self.topk = None if topk is None else int(topk)
        self.small_box = small_box
        self.context_size = self.out_size if context_size is None else \
            _as_wh(context_size, 'context_size')
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
        if self.small_box == 'context':
            region = int_region(add_context(box, self.context_size, width,
                                            height), width, height)
            scale = self.box_crop_scale
        else:
            region = int_region(box, width, height)
            scale = self._box_scale(region)
        return sample_resized_crop(region, scale, self.ratio,
                                   self.max_attempts)

    def _eligible(self, boxes: np.ndarray, scores: Optional[np.ndarray],
                  width: int, height: int) -> np.ndarray:
        """Rows of ``boxes`` that pass the proposal filter (see the class
        docstring), in row order."""
        masks = box_shape_masks(boxes, (width, height), self.min_box_size,
                                self.aspect_range)
        keep = np.ones(len(boxes), bool)
        for mask in masks.values():
            keep &= np.asarray(mask, bool)
        eligible = np.nonzero(keep)[0]
        if self.topk is not None and len(eligible) > self.topk:
            if scores is None:
                eligible = eligible[:self.topk]
            else:
                order = np.argsort(-scores[eligible], kind='stable')
                eligible = np.sort(eligible[order[:self.topk]])
        return eligible

    @cache_randomness
    def _sample_params(self, boxes: np.ndarray, scores: Optional[np.ndarray],
                       width: int, height: int) -> Dict:
        """Draw the object and the two crop regions.

        Returns:
            dict: ``index`` (row of the object in ``boxes``, -1 for scene
            crops), ``crops`` (two integer x1y1x2y2 regions) and
            ``fallback`` (no eligible box although one was wanted); the
            crops are in view order (after the random swap).
        """
        scene = (0, 0, width, height)
        eligible = self._eligible(boxes, scores, width, height)
        if self.mode == 'scene_scene' or len(eligible) == 0:
            crops = [sample_resized_crop(scene, self.crop_scale, self.ratio,
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
            crop2 = sample_resized_crop(scene, self.crop_scale, self.ratio,
                                        self.max_attempts)
        else:
            d = np.random.uniform(*self.dilation)
            dilated = dilate_box(box, d, width, height, self.dilation_mode)
            crop2 = self._crop_in_box(dilated, width, height)
        crops = [crop1, crop2]
        if np.random.rand() < self.swap_prob:
            crops.reverse()
        return dict(index=index, crops=crops, fallback=False)

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
                f'dilation_mode={self.dilation_mode!r}, '
                f'out_size={self.out_size}, '
                f'crop_scale={self.crop_scale}, '
                f'box_crop_scale={self.box_crop_scale}, '
                f'ratio={self.ratio}, '
                f'min_box_size={self.min_box_size}, '
                f'aspect_range={self.aspect_range}, '
                f'topk={self.topk}, '
                f'small_box={self.small_box!r}, '
                f'context_size={self.context_size}, '
                f'min_crop_size={self.min_crop_size}, '
                f'max_attempts={self.max_attempts}, '
                f'interpolation={self.interpolation!r}, '
                f'view_names={self.view_names}, '
                f'swap_prob={self.swap_prob})')
