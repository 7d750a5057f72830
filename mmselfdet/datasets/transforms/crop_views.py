# Copyright (c) mmselfdet contributors. All rights reserved.
"""A view maker of independent random resized crops.

:class:`RandomCropViews` writes several RandomResizedCrop views of one image
into ``results['views']`` at once, so that other view makers (e.g.
:class:`~mmselfdet.datasets.transforms.jigsaw.JigsawPatches`) can add their
views next to them and :class:`PackViews` packs everything together::

    pipeline = [
        dict(type='LoadImageRobust', on_error='skip'),
        dict(type='RandomCropViews', view_names=('view1', 'view2'),
             size=224, crop_scale=(0.2, 1.0)),
        dict(type='JigsawPatches', view_name='local'),
        dict(type='PackViews', pipelines=dict(
            view1=global_pipeline, view2=global_pipeline,
            local=local_pipeline)),
    ]
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import autocast_box_type

from mmselfdet.registry import TRANSFORMS

from .geometric import (RandomResizedCropWithBoxes, crop_resize_view,
                        sample_resized_crop)
from .views import make_view


def crop_view(results: dict,
              crop_box: Sequence[int],
              out_size: Tuple[int, int],
              interpolation: str = 'bilinear',
              min_box_size: float = 1.0,
              with_boxes: bool = True) -> dict:
    """Make one view of ``results`` by cropping ``crop_box`` and resizing it
    to ``out_size`` (w, h), leaving ``results`` untouched.

    Boxes of the source (``gt_bboxes``, mmdet boxes) are moved into the view
    and clipped; boxes that fall (almost) outside are dropped with their
    ids, labels and ignore flags. Ids are the source's ``gt_instances_ids``,
    or ``arange(N)`` over the source boxes, so a box keeps its id in every
    view cut from the same image. Masks and seg maps are not carried into
    views. The view's ``homography_matrix`` maps the source image's original
    frame into the view (the crop composed with the source's own matrix).

    Args:
        results (dict): The source image's results.
        crop_box (Sequence[int]): ``(x1, y1, x2, y2)`` inside the image.
        out_size (tuple[int, int]): ``(w, h)`` of the view.
        interpolation (str): ``mmcv.imresize`` method.
        min_box_size (float): Boxes smaller than this in the view are
            dropped.
        with_boxes (bool): Carry the source boxes; False gives a box-free
            view.

    Returns:
        dict: A view dict (see :func:`make_view`).
    """
    tmp = dict(img=results['img'])
    boxes = results.get('gt_bboxes', None) if with_boxes else None
    if boxes is not None:
        if not hasattr(boxes, 'clone'):
            raise TypeError('crop_view expects mmdet boxes in gt_bboxes '
                            '(call it inside autocast_box_type)')
        n = len(boxes)
        tmp['gt_bboxes'] = boxes.clone()
        ids = results.get('gt_instances_ids', None)
        tmp['gt_instances_ids'] = (np.arange(n, dtype=np.int64)
                                   if ids is None else np.asarray(ids).copy())
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if results.get(key, None) is not None:
                tmp[key] = np.asarray(results[key]).copy()
    crop_resize_view(tmp, crop_box, out_size, interpolation=interpolation,
                     min_box_size=min_box_size)
    view_boxes = ids = None
    if 'gt_bboxes' in tmp:
        view_boxes = tmp['gt_bboxes'].numpy()
        ids = tmp['gt_instances_ids']
    view = make_view(results, tmp['img'], tmp['homography_matrix'],
                     boxes=view_boxes, ids=ids)
    for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
        if key in tmp:
            view[key] = tmp[key]
    return view


def add_views(results: dict, views: dict, maker: str) -> None:
    """Add ``views`` to ``results['views']`` (created when missing); a name
    already there is an error naming the view maker."""
    existing = results.setdefault('views', {})
    if not isinstance(existing, dict):
        raise TypeError(f'{maker}: results["views"] must be a dict, got '
                        f'{type(existing).__name__}')
    clash = sorted(set(existing) & set(views))
    if clash:
        raise KeyError(f'{maker}: views {clash} were already made by an '
                       'earlier view maker; use other view names')
    existing.update(views)


@TRANSFORMS.register_module()
class RandomCropViews(BaseTransform):
    """Make ``len(view_names)`` independent RandomResizedCrop views.

    Each view is drawn exactly like :class:`RandomResizedCropWithBoxes`
    (whose sampler is reused: area fraction ``crop_scale``, log-uniform
    aspect ``ratio``, central-crop fallback) from the loaded image, which is
    left unchanged, and written to ``results['views'][name]`` (added to the
    views of an earlier view maker if there are any). Boxes of the image
    move into each view with their ids (see :func:`crop_view`), so the views
    of MoCo-style methods and box-level methods can share one maker.
    Per-view pixel augmentations and flips go in the view pipelines of
    :class:`PackViews`.

    Required Keys:

    - img
    - gt_bboxes (optional)
    - gt_instances_ids (optional)
    - gt_bboxes_labels (optional)
    - gt_ignore_flags (optional)
    - homography_matrix (optional)
    - views (optional)

    Modified Keys:

    - views

    Added Keys:

    - views (dict[str, dict]): one view per name, with ``img``,
      ``img_shape``, ``gt_bboxes``, ``gt_instances_ids``,
      ``gt_bboxes_labels``, ``gt_ignore_flags``, ``homography_matrix``.

    Args:
        view_names (Sequence[str]): Names of the views. Defaults to
            ``('view1', 'view2')``.
        size (int | Sequence[int]): Output size, int or ``(w, h)``.
            Defaults to 224.
        crop_scale (Sequence[float]): Area fraction range. Defaults to
            ``(0.2, 1.0)`` (MoCo v2).
        ratio (Sequence[float]): Aspect (w / h) range, log-uniform.
            Defaults to ``(3 / 4, 4 / 3)``.
        max_attempts (int): Draws before the central-crop fallback.
            Defaults to 10.
        interpolation (str): ``mmcv.imresize`` method. Defaults to
            'bilinear'.
        min_box_size (float): Boxes smaller than this (view pixels) are
            dropped. Defaults to 1.0.
    """

    def __init__(self,
                 view_names: Sequence[str] = ('view1', 'view2'),
                 size: Union[int, Sequence[int]] = 224,
                 crop_scale: Sequence[float] = (0.2, 1.0),
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 min_box_size: float = 1.0) -> None:
        super().__init__()
        view_names = tuple(view_names)
        if not view_names or len(set(view_names)) != len(view_names):
            raise ValueError(
                f'view_names must be non-empty and unique, got {view_names}')
        self.view_names = view_names
        # validates the arguments and provides the crop sampling
        self._sampler = RandomResizedCropWithBoxes(
            scale=size, crop_scale=crop_scale, ratio=ratio,
            max_attempts=max_attempts, interpolation=interpolation,
            min_box_size=min_box_size)

    @cache_randomness
    def _sample_crops(self, height: int,
                      width: int) -> Tuple[Tuple[int, int, int, int], ...]:
        """One ``(x1, y1, x2, y2)`` crop region per view."""
        crops = []
        for _ in self.view_names:
            s = self._sampler
            crops.append(sample_resized_crop((0, 0, width, height),
                                             s.crop_scale, s.ratio,
                                             s.max_attempts, y_first=True))
        return tuple(crops)

    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        """Write the crop views into ``results['views']``.

        Args:
            results (dict): Result dict of the loaded image.

        Returns:
            dict: ``results`` with the views added.
        """
        height, width = results['img'].shape[:2]
        s = self._sampler
        views = {
            name: crop_view(results, crop, s.scale,
                            interpolation=s.interpolation,
                            min_box_size=s.min_box_size)
            for name, crop in zip(self.view_names,
                                  self._sample_crops(height, width))
        }
        add_views(results, views, type(self).__name__)
        return results

    def __repr__(self) -> str:
        s = self._sampler
        return (f'{self.__class__.__name__}('
                f'view_names={self.view_names}, '
                f'size={s.scale}, '
                f'crop_scale={s.crop_scale}, '
                f'ratio={s.ratio}, '
                f'max_attempts={s.max_attempts}, '
                f'interpolation={s.interpolation!r}, '
                f'min_box_size={s.min_box_size})')

