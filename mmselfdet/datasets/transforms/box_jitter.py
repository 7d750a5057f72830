# Copyright (c) mmselfdet contributors. All rights reserved.
"""Random box jitter of the boxes of an image or of named views."""
import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import BaseBoxes
from mmengine.logging import print_log

from mmselfdet.registry import TRANSFORMS
from mmselfdet.structures.box_ops import (ANCHOR_RATIOS, ANCHOR_SIZES,
                                          anchor_jitter, clip_boxes,
                                          relative_jitter)

_MODES = ('anchor', 'relative')


def _boxes_to_numpy(boxes) -> np.ndarray:
    if isinstance(boxes, BaseBoxes):
        return boxes.numpy().astype(np.float32).reshape(-1, 4)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _boxes_like(new: np.ndarray, old):
    """``new`` in the container type of ``old`` (mmdet boxes or numpy)."""
    if isinstance(old, BaseBoxes):
        return type(old)(new.astype(np.float32))
    return new.astype(np.float32)


@TRANSFORMS.register_module()
class RandomBoxJitter(BaseTransform):
    """Jitter ``gt_bboxes`` of an image, or of some views of a view maker.

    Two modes (functions of :mod:`mmselfdet.structures.box_ops`):

    * ``'anchor'`` (InsLoc): a box is replaced by a random anchor of a
      stride grid whose IoU with the box is above ``iou_thr``, with the
      official InsLoc rule by default (:func:`anchor_jitter`: ``stride``,
      ``sizes`` x ``ratios``, ``center_offset``, NMS(``nms_thr``) on random
      scores before the draw, unclipped anchors unless ``clip_anchors``),
      then clipped to the image. Boxes with no such anchor (much smaller or
      larger than every anchor), the *fallbacks*, draw among their
      ``fallback_topk`` best anchors (``fallback='top_iou'``) or are kept
      (``'keep'``); they are counted in :attr:`num_fallbacks` and reported
      once with ``print_log``.
    * ``'relative'`` (SoCo): centre and size move by up to ``jitter_ratio``
      of the box width / height.

    Each box is jittered independently with probability ``prob`` **[ours]**
    (per box, not per image). Jittered boxes are clipped to the image (view)
    and have width and height >= 1, so no box is dropped and every aligned
    key (``gt_bboxes_labels``, ``gt_ignore_flags``, ``gt_instances_ids``)
    stays valid untouched. The image and the homography do not change: the
    jittered box is a deliberately imprecise box of the same view.

    With ``views=None`` the boxes of ``results`` are jittered (image size
    from ``img_shape``); with a list of names, the boxes of those views of
    ``results['views']`` (written by a view maker) are, each in its own
    view's size. With several dataloader workers each worker has its own
    counters.

    Required Keys:

    - gt_bboxes (BaseBoxes | np.ndarray) (with ``views=None``)
    - img_shape (with ``views=None``)
    - views (dict[str, dict]) (with ``views`` given; each named view needs
      ``gt_bboxes`` and ``img_shape``)

    Modified Keys:

    - gt_bboxes (of the results, or of each named view)

    Args:
        mode (str): ``'anchor'`` or ``'relative'``. Defaults to 'anchor'.
        prob (float): Probability to jitter each box. Defaults to 1.0.
        stride (int): Anchor grid stride ('anchor'). Defaults to 16.
        sizes (Sequence[float]): Anchor sizes ('anchor').
            Defaults to (32, 64, 128, 256).
        ratios (Sequence[float]): Anchor ratios h / w ('anchor').
            Defaults to (0.5, 0.75, 1.0, 1.5, 2.0).
        iou_thr (float): Minimum IoU, exclusive ('anchor'). Defaults to 0.5.
        center_offset (float): Anchor centre offset in strides ('anchor').
            Defaults to 0.0.
        nms_thr (float, optional): NMS threshold among the candidates
            before the draw; None: uniform over all ('anchor').
            Defaults to 0.7.
        clip_anchors (bool): Clip the anchors before the IoU ('anchor').
            Defaults to False.
        fallback (str): ``'top_iou'`` or ``'keep'`` ('anchor').
            Defaults to 'top_iou'.
        fallback_topk (int): Candidates of a fallback box ('anchor').
            Defaults to 4000.
        jitter_ratio (float): Maximum relative change ('relative').
            Defaults to 0.1.
        views (Sequence[str], optional): Names of the views to jitter; None
            jitters the boxes of ``results``. Defaults to None.
    """

    def __init__(self,
                 mode: str = 'anchor',
                 prob: float = 1.0,
                 stride: int = 16,
                 sizes: Sequence[float] = ANCHOR_SIZES,
                 ratios: Sequence[float] = ANCHOR_RATIOS,
                 iou_thr: float = 0.5,
                 jitter_ratio: float = 0.1,
                 views: Optional[Sequence[str]] = None,
                 center_offset: float = 0.0,
                 nms_thr: Optional[float] = 0.7,
                 clip_anchors: bool = False,
                 fallback: str = 'top_iou',
                 fallback_topk: int = 4000) -> None:
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if stride <= 0 or not sizes or not ratios:
            raise ValueError('stride must be > 0 and sizes / ratios non-empty')
        if jitter_ratio < 0:
            raise ValueError(f'jitter_ratio must be >= 0, got {jitter_ratio}')
        if fallback not in ('top_iou', 'keep'):
            raise ValueError(f"fallback must be 'top_iou' or 'keep', got "
                             f'{fallback!r}')
        if isinstance(views, str):
            views = [views]
        self.mode = mode
        self.prob = float(prob)
        self.stride = int(stride)
        self.sizes = tuple(float(s) for s in sizes)
        self.ratios = tuple(float(r) for r in ratios)
        self.iou_thr = float(iou_thr)
        self.jitter_ratio = float(jitter_ratio)
        self.views = None if views is None else list(views)
        self.anchor_cfg = dict(
            stride=self.stride, sizes=self.sizes, ratios=self.ratios,
            iou_thr=self.iou_thr, center_offset=float(center_offset),
            nms_thr=None if nms_thr is None else float(nms_thr),
            clip_anchors=bool(clip_anchors), fallback=fallback,
            fallback_topk=int(fallback_topk))
        self.num_jittered = 0
        self.num_fallbacks = 0
        self._reported = False

    @cache_randomness
    def _jitter(self, boxes_list: List[np.ndarray],
                sizes_wh: List[Tuple[int, int]]
                ) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Jitter each (N, 4) array of ``boxes_list`` in its image size.

        Returns:
            list[tuple]: ``(boxes, chosen, fallback)`` per array: the new
            boxes, the (N,) mask of boxes drawn for jitter and the (N,) mask
            of drawn boxes for which no anchor qualified (all False in
            'relative' mode).
        """
        out = []
        for boxes, img_wh in zip(boxes_list, sizes_wh):
            chosen = np.random.random_sample(len(boxes)) < self.prob  # (N,)
            new = boxes.copy()
            fallback = np.zeros(len(boxes), dtype=bool)
            if chosen.any():
                if self.mode == 'anchor':
                    jittered, fb = anchor_jitter(boxes[chosen], img_wh,
                                                 **self.anchor_cfg)
                    jittered = clip_boxes(jittered, img_wh)
                    fallback[chosen] = fb
                else:
                    jittered = relative_jitter(boxes[chosen], img_wh,
                                               ratio=self.jitter_ratio)
                new[chosen] = jittered
            out.append((new, chosen, fallback))
        return out

    def _targets(self, results: dict) -> List[dict]:
        if self.views is None:
            return [results]
        views = results.get('views')
        if not isinstance(views, dict):
            raise KeyError('RandomBoxJitter(views=...) needs results["views"] '
                           'from a view maker earlier in the pipeline')
        missing = [v for v in self.views if v not in views]
        if missing:
            raise KeyError(f'RandomBoxJitter: views {missing} not made; the '
                           f'view maker made {sorted(views)}')
        return [views[v] for v in self.views]

    def transform(self, results: dict) -> dict:
        """Jitter the boxes.

        Args:
            results (dict): Result dict (with ``views`` when configured).

        Returns:
            dict: ``results`` with jittered ``gt_bboxes``.
        """
        targets = [t for t in self._targets(results)
                   if t.get('gt_bboxes') is not None]
        if not targets:
            return results
        boxes_list = [_boxes_to_numpy(t['gt_bboxes']) for t in targets]
        sizes_wh = [(int(t['img_shape'][1]), int(t['img_shape'][0]))
                    for t in targets]
        jittered = self._jitter(boxes_list, sizes_wh)
        for target, (new, chosen, fallback) in zip(targets, jittered):
            target['gt_bboxes'] = _boxes_like(new, target['gt_bboxes'])
            self.num_jittered += int(chosen.sum())
            self.num_fallbacks += int(fallback.sum())
            if fallback.any() and not self._reported:
                self._reported = True
                print_log(
                    f'RandomBoxJitter: {int(fallback.sum())} box(es) of '
                    f'{results.get("img_path", "an image")} have no anchor '
                    f'(stride {self.stride}, sizes {self.sizes}, ratios '
                    f'{self.ratios}) with IoU > {self.iou_thr} (fallback '
                    f'{self.anchor_cfg["fallback"]!r}); further cases are '
                    'only counted in RandomBoxJitter.num_fallbacks.',
                    logger='current', level=logging.WARNING)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'mode={self.mode!r}, '
                f'prob={self.prob}, '
                f'stride={self.stride}, '
                f'sizes={self.sizes}, '
                f'ratios={self.ratios}, '
                f'iou_thr={self.iou_thr}, '
                f'jitter_ratio={self.jitter_ratio}, '
                f'views={self.views}, '
                f'center_offset={self.anchor_cfg["center_offset"]}, '
                f'nms_thr={self.anchor_cfg["nms_thr"]}, '
                f'clip_anchors={self.anchor_cfg["clip_anchors"]}, '
                f'fallback={self.anchor_cfg["fallback"]!r}, '
                f'fallback_topk={self.anchor_cfg["fallback_topk"]})')
