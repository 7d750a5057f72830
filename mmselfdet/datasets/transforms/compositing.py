# Copyright (c) mmselfdet contributors. All rights reserved.
"""InsLoc's views: a crop of the image pasted onto other images.

:class:`InstanceComposite` uses mmdet's multi-image protocol (like
``Mosaic`` / ``CopyPaste``): it has ``get_indexes(dataset)``, and mmdet's
``MultiImageMixDataset`` loads those images with the inner dataset's
pipeline and passes them in ``results['mix_results']``::

    train_dataloader = dict(dataset=dict(
        type='MultiImageMixDataset',
        dataset=dict(type='UnlabeledDataset', data_root=...,
                     pipeline=[dict(type='LoadImageRobust',
                                    on_error='skip')]),
        pipeline=[
            dict(type='InstanceComposite', view_names=('query', 'key')),
            dict(type='PackViews', pipelines=dict(
                query=[...pixel augs..., dict(type='RandomFlip', prob=0.5),
                       dict(type='PackViewInputs')],
                key=[...same...])),
        ]))

mmdet's ``RandomFlip`` in a view pipeline flips ``gt_bboxes`` (the pasted
box) and composes ``homography_matrix`` with the image.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmselfdet.registry import TRANSFORMS

from .crop_views import add_views
from .geometric import RandomResizedCropWithBoxes, sample_resized_crop
from .views import make_view

# (crop x1, y1, x2, y2), (foreground w, h), (paste x, y)
_Layout = Tuple[Tuple[int, int, int, int], Tuple[int, int], Tuple[int, int]]
_FG_RESIZE = ('imrescale', 'range')


def imrescale_shape(crop_wh: Tuple[int, int],
                    target_wh: Tuple[int, int]) -> Tuple[int, int]:
    """Size of a ``crop_wh`` image after ``mmcv.imrescale(img, target_wh)``.

    The largest aspect-keeping size whose long side is at most
    ``max(target_wh)`` and short side at most ``min(target_wh)``: scale
    ``min(max(t) / max(c), min(t) / min(c))``, sides rounded half up
    (mmcv's ``rescale_size``), at least 1 pixel. With a crop more elongated
    than the target, the long side reaches ``max(t)`` and the short side
    falls below ``min(t)``.

    Args:
        crop_wh (tuple[int, int]): ``(w, h)`` of the crop.
        target_wh (tuple[int, int]): ``(w, h)`` scale given to imrescale.

    Returns:
        tuple[int, int]: ``(w, h)`` of the rescaled crop.
    """
    cw, ch = crop_wh
    factor = min(max(target_wh) / max(cw, ch), min(target_wh) / min(cw, ch))
    return (max(1, int(cw * factor + 0.5)), max(1, int(ch * factor + 0.5)))


@TRANSFORMS.register_module()
class InstanceComposite(BaseTransform):
    """Paste independent crops of the image onto different backgrounds
    (InsLoc, docs/methods.md section 1).

    For each of the ``len(view_names)`` views (default query and key):

    1. a foreground crop of the current image: area a uniform fraction
       ``crop_scale`` (0.2-1) of the image, aspect (w / h) log-uniform in
       ``ratio`` (0.5-2), inside the image (the sampler of
       :class:`RandomResizedCropWithBoxes`, with its central-crop fallback);
       the crops of the views are drawn independently;
    2. resized keeping its aspect, by ``fg_resize``:

       * ``'imrescale'`` (default, the official ``CopyAndPaste``): a target
         ``(tw, th)``, each side an integer uniform in ``[fg_size[0],
         fg_size[1])``, then ``mmcv.imrescale`` to it
         (:func:`imrescale_shape`): the long side is at most ``max(tw, th)``
         and the short side at most ``min(tw, th)``, so a side can fall
         below ``fg_size[0]`` (down to about ``fg_size[0] / 2`` for crops
         of aspect 2);
       * ``'range'`` (ours): both sides in ``[fg_size[0], fg_size[1])``, the
         scale uniform over the scales that satisfy both; when the aspect
         is too extreme for the range (``long / short >= hi / lo``) the long
         side is set to ``hi - 1`` and the short side clipped up to ``lo``;
    3. pasted at a uniform position fully inside background ``i``
       (``mix_results[i]``, resized to ``bg_size`` without keeping aspect):
       the offset is an integer in ``[0, bg - fg)`` per axis (the official
       ``randint(0, bg - fg)``; 0 when the foreground fills that side).
       If the foreground is larger than the background (``fg_size`` too big
       for ``bg_size``), it is shrunk, aspect kept, to fit.

    Each view gets one box, the pasted rectangle, with instance id 0 (the
    same object in every view); boxes of the source image are ignored. Its
    ``homography_matrix`` maps the original foreground image into the view
    (crop, scale and paste offset, composed with the image's own matrix)
    and is only meaningful inside the box: background pixels have no
    source point in the foreground image. The background's path is stored
    as ``bg_img_path``.

    Backgrounds (:meth:`get_indexes`): ``num_views`` random indices, distinct
    from each other when the dataset has at least ``num_views`` images
    (``distinct_backgrounds``, ours; the official dataset draws them
    independently, ``distinct_backgrounds=False``).
    ``get_indexes`` is not told the current index, so a background can be
    the foreground image itself (probability about ``num_views / N``;
    negligible for real datasets). A dataset of 2 images always uses both
    (one is the foreground's own image); a dataset of 1 image uses it for
    every background (indices repeat when ``N < num_views``).

    Required Keys:

    - img
    - mix_results (list[dict], ``num_views`` results with ``img``; added by
      ``MultiImageMixDataset``)
    - homography_matrix (optional)
    - views (optional)

    Modified Keys:

    - views

    Added Keys:

    - views (dict[str, dict]): one view per name, with ``img`` (the
      composite, ``bg_size``), ``img_shape``, ``gt_bboxes`` (1 box),
      ``gt_instances_ids`` ([0]), ``gt_bboxes_labels``, ``gt_ignore_flags``,
      ``homography_matrix``, ``bg_img_path``.

    Args:
        view_names (Sequence[str]): Names of the views, one background each.
            Defaults to ``('query', 'key')``.
        fg_size (Sequence[int]): ``[min, max)`` range of the rescale
            target sides ('imrescale') or of both foreground sides
            ('range'). Defaults to ``(128, 255)``.
        bg_size (int | Sequence[int]): Background size, int or ``(w, h)``.
            Defaults to 256.
        crop_scale (Sequence[float]): Area fraction range of the foreground
            crop. Defaults to ``(0.2, 1.0)``.
        ratio (Sequence[float]): Aspect range of the foreground crop.
            Defaults to ``(0.5, 2.0)``.
        max_attempts (int): Crop draws before the central fallback.
            Defaults to 10.
        interpolation (str): ``mmcv.imresize`` method. Defaults to
            'bilinear'.
        fg_resize (str): ``'imrescale'`` or ``'range'`` (see step 2).
            Defaults to 'imrescale'.
        distinct_backgrounds (bool): Draw the backgrounds without
            replacement. Defaults to True.
    """

    def __init__(self,
                 view_names: Sequence[str] = ('query', 'key'),
                 fg_size: Sequence[int] = (128, 255),
                 bg_size: Union[int, Sequence[int]] = 256,
                 crop_scale: Sequence[float] = (0.2, 1.0),
                 ratio: Sequence[float] = (0.5, 2.0),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 fg_resize: str = 'imrescale',
                 distinct_backgrounds: bool = True) -> None:
        super().__init__()
        if fg_resize not in _FG_RESIZE:
            raise ValueError(f'fg_resize must be one of {_FG_RESIZE}, got '
                             f'{fg_resize!r}')
        self.fg_resize = fg_resize
        self.distinct_backgrounds = bool(distinct_backgrounds)
        view_names = tuple(view_names)
        if not view_names or len(set(view_names)) != len(view_names):
            raise ValueError(
                f'view_names must be non-empty and unique, got {view_names}')
        fg_size = tuple(int(s) for s in fg_size)
        if len(fg_size) != 2 or not 1 <= fg_size[0] < fg_size[1]:
            raise ValueError(
                f'fg_size must be [min, max) with 1 <= min < max, got {fg_size}')
        if isinstance(bg_size, int):
            bg_size = (bg_size, bg_size)
        bg_size = tuple(int(s) for s in bg_size)
        if len(bg_size) != 2 or min(bg_size) < 1:
            raise ValueError(f'bg_size must be a positive int or (w, h), got '
                             f'{bg_size}')
        self.view_names = view_names
        self.fg_size: Tuple[int, int] = fg_size
        self.bg_size: Tuple[int, int] = bg_size  # (w, h)
        # validates crop arguments and provides the crop sampling
        self._sampler = RandomResizedCropWithBoxes(
            scale=1, crop_scale=crop_scale, ratio=ratio,
            max_attempts=max_attempts, interpolation=interpolation)

    @property
    def num_views(self) -> int:
        return len(self.view_names)

    @cache_randomness
    def get_indexes(self, dataset) -> List[int]:
        """Indices of the backgrounds, one per view (see the class doc).

        Args:
            dataset: The dataset wrapped by ``MultiImageMixDataset``.

        Returns:
            list[int]: ``num_views`` indices.
        """
        n = len(dataset)
        if self.distinct_backgrounds and n >= self.num_views:
            idx = np.random.choice(n, self.num_views, replace=False)
        else:
            idx = np.random.randint(0, n, self.num_views)
        return [int(i) for i in idx]

    def _fit(self, w: int, h: int) -> Tuple[int, int]:
        """``(w, h)`` shrunk, aspect kept, to fit the background."""
        bw, bh = self.bg_size
        if w > bw or h > bh:
            shrink = min(bw / w, bh / h)
            w = min(bw, max(1, int(math.floor(w * shrink))))
            h = min(bh, max(1, int(math.floor(h * shrink))))
        return w, h

    def _range_shape(self, crop_w: int, crop_h: int) -> Tuple[int, int]:
        """Our rule: a uniform scale putting both sides in ``fg_size``."""
        lo, hi = self.fg_size
        s_lo = lo / min(crop_w, crop_h)
        s_hi = (hi - 1) / max(crop_w, crop_h)
        scale = np.random.uniform(s_lo, s_hi) if s_lo < s_hi else s_hi
        w = min(max(int(round(crop_w * scale)), lo), hi - 1)
        h = min(max(int(round(crop_h * scale)), lo), hi - 1)
        return w, h

    @cache_randomness
    def _sample_layouts(self, height: int, width: int) -> List[_Layout]:
        """Crop, foreground size and paste position of every view."""
        lo, hi = self.fg_size
        bw, bh = self.bg_size
        layouts = []
        for _ in self.view_names:
            s = self._sampler
            x0, y0, x1, y1 = sample_resized_crop(
                (0, 0, width, height), s.crop_scale, s.ratio, s.max_attempts,
                y_first=True)
            cw, ch = x1 - x0, y1 - y0
            if self.fg_resize == 'imrescale':
                target = (int(np.random.randint(lo, hi)),
                          int(np.random.randint(lo, hi)))
                fw, fh = self._fit(*imrescale_shape((cw, ch), target))
            else:
                fw, fh = self._fit(*self._range_shape(cw, ch))
            px = int(np.random.randint(0, bw - fw)) if fw < bw else 0
            py = int(np.random.randint(0, bh - fh)) if fh < bh else 0
            layouts.append(((x0, y0, x1, y1), (fw, fh), (px, py)))
        return layouts

    def transform(self, results: dict) -> Optional[dict]:
        """Make the composite views.

        Args:
            results (dict): The current image's results with
                ``mix_results``.

        Returns:
            dict: ``results`` with the views added.
        """
        mix = results.get('mix_results', None)
        if not mix or len(mix) < self.num_views:
            raise KeyError(
                f'InstanceComposite needs {self.num_views} background images '
                'in results["mix_results"]; put it in the pipeline of '
                "mmdet's MultiImageMixDataset (which calls get_indexes), got "
                f'{0 if not mix else len(mix)} for '
                f'{results.get("img_path", "an image")}')
        img = results['img']
        height, width = img.shape[:2]
        interp = self._sampler.interpolation
        views = {}
        for name, bg_res, (crop, (fw, fh), (px, py)) in zip(
                self.view_names, mix, self._sample_layouts(height, width)):
            bg = bg_res['img']
            if bg.shape[2:] != img.shape[2:] or bg.dtype != img.dtype:
                raise ValueError(
                    f'InstanceComposite: background '
                    f'{bg_res.get("img_path", "")} has shape {bg.shape} / '
                    f'{bg.dtype}, foreground {results.get("img_path", "")} '
                    f'{img.shape} / {img.dtype}')
            canvas = mmcv.imresize(bg, self.bg_size, interpolation=interp)
            if canvas.ndim < img.ndim:
                canvas = canvas[..., None]
            x1, y1, x2, y2 = crop
            fg = mmcv.imresize(img[y1:y2, x1:x2], (fw, fh),
                               interpolation=interp)
            if fg.ndim < img.ndim:
                fg = fg[..., None]
            canvas[py:py + fh, px:px + fw] = fg
            sx, sy = fw / (x2 - x1), fh / (y2 - y1)
            matrix = np.array([[sx, 0.0, px - sx * x1],
                               [0.0, sy, py - sy * y1],
                               [0.0, 0.0, 1.0]], np.float32)
            view = make_view(results, canvas, matrix,
                             boxes=np.array([[px, py, px + fw, py + fh]]),
                             ids=np.zeros(1, np.int64))
            view['bg_img_path'] = bg_res.get('img_path', None)
            views[name] = view
        add_views(results, views, type(self).__name__)
        return results

    def __repr__(self) -> str:
        s = self._sampler
        return (f'{self.__class__.__name__}('
                f'view_names={self.view_names}, '
                f'fg_size={self.fg_size}, '
                f'bg_size={self.bg_size}, '
                f'crop_scale={s.crop_scale}, '
                f'ratio={s.ratio}, '
                f'max_attempts={s.max_attempts}, '
                f'interpolation={s.interpolation!r}, '
                f'fg_resize={self.fg_resize!r}, '
                f'distinct_backgrounds={self.distinct_backgrounds})')
