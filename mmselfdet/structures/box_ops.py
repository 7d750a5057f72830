# Copyright (c) mmselfdet contributors. All rights reserved.
"""Box operations shared by the view makers (numpy) and the models (torch).

Every function takes ``(N, 4)`` ``x1y1x2y2`` boxes either as a numpy array or
as a torch tensor and returns the same kind (numpy ``float32``; torch in the
input's floating dtype and on its device). The work is done in torch, a numpy
input is converted on the way in and out.

Randomness: the random functions take ``rng``, which may be

* ``None``: numpy's global generator for numpy inputs (what data transforms
  use, seeded per worker by mmengine), torch's global generator for tensor
  inputs (what models use);
* a ``numpy.random.Generator`` or ``numpy.random.RandomState``;
* a ``torch.Generator`` (its device must be the CPU or the boxes' device).

Image sizes are given as ``img_wh = (width, height)`` in pixels. Results are
clipped to ``[0, W] x [0, H]`` and non-degenerate: width and height are at
least ``min(1, W)`` and ``min(1, H)`` (see :func:`clip_boxes`), except the
anchors :func:`anchor_jitter` draws with ``clip_anchors=False`` (InsLoc's
default), which may reach outside the image as the official anchors do.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.ops import nms
from mmdet.structures.bbox import bbox_overlaps

ArrayLike = Union[np.ndarray, torch.Tensor]
RNG = Union[None, np.random.Generator, np.random.RandomState, torch.Generator]

# IoU matrices are computed in chunks of boxes so that a chunk holds at most
# this many (box, anchor) pairs (about 64 MB of float32 intermediates).
_MAX_PAIRS = 1 << 22


def _as_tensor(boxes: ArrayLike) -> Tuple[torch.Tensor, bool]:
    """``(boxes as a floating (N, 4) tensor, whether the input was numpy)``."""
    if isinstance(boxes, torch.Tensor):
        tensor = boxes if boxes.is_floating_point() else boxes.float()
        return tensor.reshape(-1, 4), False
    array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return torch.from_numpy(array.copy()), True


def _restore(tensor: torch.Tensor, was_numpy: bool) -> ArrayLike:
    if was_numpy:
        return tensor.detach().cpu().numpy().astype(np.float32)
    return tensor


def _uniform(shape: Tuple[int, ...], rng: RNG, use_numpy_global: bool,
             like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` as a tensor like ``like``."""
    if isinstance(rng, torch.Generator):
        draws = torch.rand(shape, generator=rng, device=rng.device)
    elif isinstance(rng, np.random.Generator):
        draws = torch.from_numpy(rng.random(shape))
    elif isinstance(rng, np.random.RandomState):
        draws = torch.from_numpy(rng.random_sample(shape))
    elif rng is None and use_numpy_global:
        draws = torch.from_numpy(np.random.random_sample(shape))
    elif rng is None:
        return torch.rand(shape, device=like.device, dtype=like.dtype)
    else:
        raise TypeError(f'rng must be None, a numpy Generator / RandomState or '
                        f'a torch.Generator, got {type(rng)}')
    return draws.to(device=like.device, dtype=like.dtype)


def _clip_tensor(boxes: torch.Tensor, img_wh: Sequence[float],
                 min_size: float) -> torch.Tensor:
    width, height = float(img_wh[0]), float(img_wh[1])
    out = boxes.clone()
    for lo_col, hi_col, limit in ((0, 2, width), (1, 3, height)):
        lo = out[:, lo_col].clamp(0, limit)
        hi = out[:, hi_col].clamp(0, limit)
        hi = torch.maximum(lo, hi)
        need = min(float(min_size), limit)
        small = (hi - lo) < need  # no `if small.any()`: a device read
        centre = (lo + hi) / 2
        new_lo = (centre - need / 2).clamp(0, limit - need)
        lo = torch.where(small, new_lo, lo)
        hi = torch.where(small, new_lo + need, hi)
        out[:, lo_col], out[:, hi_col] = lo, hi
    return out


def clip_boxes(boxes: ArrayLike, img_wh: Sequence[float],
               min_size: float = 1.0) -> ArrayLike:
    """Clip boxes to the image and make them non-degenerate.

    A box whose clipped width (height) is below ``min_size`` is widened
    (heightened) to ``min_size`` around its clipped centre, shifted to stay
    inside the image (to the full image side if that is smaller).

    Args:
        boxes (np.ndarray | Tensor): (N, 4) x1y1x2y2 boxes.
        img_wh (Sequence[float]): ``(width, height)`` of the image.
        min_size (float): Minimum width and height. Defaults to 1.0.

    Returns:
        np.ndarray | Tensor: (N, 4) boxes of the input's kind.
    """
    tensor, was_numpy = _as_tensor(boxes)
    return _restore(_clip_tensor(tensor, img_wh, min_size), was_numpy)


def box_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> ArrayLike:
    """IoU matrix between two sets of x1y1x2y2 boxes (mmdet's
    ``bbox_overlaps``).

    Returns:
        np.ndarray | Tensor: (N, M) IoU, of the kind of ``boxes1``.
    """
    t1, was_numpy = _as_tensor(boxes1)
    t2, _ = _as_tensor(boxes2)
    return _restore(bbox_overlaps(t1, t2.to(t1)), was_numpy)


def box_shape_masks(boxes: ArrayLike,
                    img_wh: Sequence[float],
                    min_size: Optional[float] = None,
                    aspect_range: Optional[Tuple[float, float]] = None,
                    area_ratio_range: Optional[Tuple[float, float]] = None
                    ) -> Dict[str, ArrayLike]:
    """Which boxes pass SoCo's shape filters, one boolean mask per filter.

    ``min_size``: width **and** height at least it (pixels); ``aspect``:
    ``w / h`` in ``aspect_range``; ``area_ratio``: ``sqrt(box area / image
    area)`` in ``area_ratio_range`` (ranges inclusive, with a few ulps of
    tolerance so that e.g. 10 x 30 passes at 1/3). A filter given as
    ``None`` is absent from the result. Used by the offline proposal filter
    (:func:`mmselfdet.datasets.proposals.filter_proposals`) and by the
    heat-map proposer on the device.

    Args:
        boxes (np.ndarray | Tensor): (N, 4) x1y1x2y2 boxes of positive size.
        img_wh (Sequence[float]): ``(width, height)`` of the image.

    Returns:
        dict[str, np.ndarray | Tensor]: ``{'min_size', 'aspect',
        'area_ratio'}`` (those switched on) -> (N,) bool masks of the
        input's kind.
    """
    tensor, was_numpy = _as_tensor(boxes)
    tensor = tensor.double() if was_numpy else tensor
    bw = tensor[:, 2] - tensor[:, 0]
    bh = tensor[:, 3] - tensor[:, 1]
    masks = {}
    if min_size is not None:
        masks['min_size'] = (bw >= min_size) & (bh >= min_size)
    if aspect_range is not None:
        lo, hi = aspect_range
        ratio = bw / bh.clamp(min=1e-12)
        masks['aspect'] = (ratio >= lo * (1 - 1e-9)) & (ratio <= hi *
                                                         (1 + 1e-9))
    if area_ratio_range is not None:
        lo, hi = area_ratio_range
        ratio = (bw * bh / (float(img_wh[0]) * float(img_wh[1]))).sqrt()
        masks['area_ratio'] = (ratio >= lo * (1 - 1e-9)) & (ratio <= hi *
                                                             (1 + 1e-9))
    if was_numpy:
        return {k: v.cpu().numpy() for k, v in masks.items()}
    return masks


# InsLoc's anchor jitter (official ``AnchorAugHead`` with the InsLoc FPN
# config): one stride-16 level, scales 2-16 of the stride, five ratios,
# centres on the grid points, candidates IoU > 0.5, NMS(0.7) on random scores
ANCHOR_SIZES = (32, 64, 128, 256)
ANCHOR_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0)
_FALLBACKS = ('top_iou', 'keep')


def anchor_grid(img_wh: Sequence[float],
                stride: int = 16,
                sizes: Sequence[float] = ANCHOR_SIZES,
                ratios: Sequence[float] = ANCHOR_RATIOS,
                center_offset: float = 0.0,
                device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """All anchors of a stride grid over the image (not clipped).

    Anchor centres are at ``((i + center_offset) * stride, (j +
    center_offset) * stride)`` for ``ceil(W / stride) x ceil(H / stride)``
    grid cells (the cells of a stride-``stride`` feature map); the default
    offset 0 puts them on the grid points, as mmdet 2.x's
    ``AnchorGenerator`` (``center_offset=0``) that InsLoc uses. At each
    centre there is one anchor per ``size x ratio`` with mmdet's convention
    ``ratio = h / w`` and area ``size ** 2`` (``w = size / sqrt(ratio)``,
    ``h = size * sqrt(ratio)``).

    Returns:
        Tensor: (A, 4) x1y1x2y2 anchors, ``A = cells * len(sizes) *
        len(ratios)``; cell-major order.
    """
    width, height = float(img_wh[0]), float(img_wh[1])
    num_x = max(1, int(math.ceil(width / stride)))
    num_y = max(1, int(math.ceil(height / stride)))
    xs = (torch.arange(num_x, dtype=torch.float32, device=device)
          + center_offset) * stride
    ys = (torch.arange(num_y, dtype=torch.float32, device=device)
          + center_offset) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing='ij')
    centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)  # (C, 2)
    shapes = torch.tensor(
        [[s / math.sqrt(r), s * math.sqrt(r)] for s in sizes for r in ratios],
        dtype=torch.float32, device=device)  # (S, 2) as (w, h)
    half = shapes[None] / 2  # (1, S, 2)
    lo = centres[:, None] - half  # (C, S, 2)
    hi = centres[:, None] + half  # (C, S, 2)
    return torch.cat([lo, hi], dim=2).reshape(-1, 4)  # (C * S, 4)


def _candidate_mask(ious: torch.Tensor, iou_thr: float, fallback: str,
                    fallback_topk: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(candidates (n, A) bool, no anchor above iou_thr (n,) bool)``.

    A box without an anchor above the threshold gets, with ``'top_iou'``,
    its ``fallback_topk`` anchors of highest IoU as candidates (ties in
    anchor order); with ``'keep'``, none."""
    valid = ious > iou_thr  # (n, A)
    none = ~valid.any(dim=1)  # (n,)
    if fallback == 'top_iou' and bool(none.any()):
        k = min(int(fallback_topk), ious.size(1))
        order = torch.sort(ious[none], dim=1, descending=True,
                           stable=True).indices[:, :k]  # (m, k)
        rows = valid[none]
        rows.scatter_(1, order, True)
        valid[none] = rows
    return valid, none


def _grouped_nms(boxes: torch.Tensor, scores: torch.Tensor,
                 groups: torch.Tensor, thr: float,
                 per_call: int = 16) -> torch.Tensor:
    """Which boxes survive NMS(``thr``) within their group, (P,) bool.

    mmcv's ``nms`` (IoU strictly above ``thr`` suppresses, no +1) over
    ``per_call`` groups at a time, each group shifted to its own region as
    mmdet's ``batched_nms`` does (but from the smallest coordinate, so that
    negative coordinates cannot make groups overlap). In float32 the shift
    costs about 1e-3 px at 16 groups of a 256 px image.
    """
    keep = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    if len(boxes) == 0:
        return keep
    boxes = boxes.float() - boxes.min().float()
    span = boxes.max() + 1
    for lo in range(0, int(groups.max()) + 1, per_call):
        sel = ((groups >= lo) & (groups < lo + per_call)).nonzero()[:, 0]
        if len(sel) == 0:
            continue
        shifted = boxes[sel] + ((groups[sel] - lo).float() * span)[:, None]
        _, kept = nms(shifted, scores[sel].float(), thr)
        keep[sel[kept]] = True
    return keep


def anchor_jitter(boxes: ArrayLike,
                  img_wh: Sequence[float],
                  stride: int = 16,
                  sizes: Sequence[float] = ANCHOR_SIZES,
                  ratios: Sequence[float] = ANCHOR_RATIOS,
                  iou_thr: float = 0.5,
                  rng: RNG = None,
                  center_offset: float = 0.0,
                  nms_thr: Optional[float] = 0.7,
                  clip_anchors: bool = False,
                  fallback: str = 'top_iou',
                  fallback_topk: int = 4000
                  ) -> Tuple[ArrayLike, ArrayLike]:
    """Replace each box by a random grid anchor that overlaps it (InsLoc).

    The defaults are the official InsLoc rule (``AnchorAugHead`` and
    ``InsLocFPN.get_stage2_bboxes`` of limbo0000/InstanceLoc with its FPN
    config): the anchors of :func:`anchor_grid` (stride 16, sizes 32-256,
    ratios 0.5-2, centres on the grid points, not clipped) with
    ``IoU > iou_thr`` to the box are the candidates; NMS with threshold
    ``nms_thr`` runs over them with uniform random scores, and one survivor
    is drawn uniformly. Anchors that overlap each other by more than
    ``nms_thr`` therefore share the probability of one survivor.

    Switches (ours, kept for ablations): ``nms_thr=None`` draws uniformly
    among all candidates; ``clip_anchors=True`` clips the anchors to the
    image before the IoU (the result then lies inside the image);
    ``fallback='keep'`` keeps a box that has no candidate (clipped) instead
    of drawing among its ``fallback_topk`` highest-IoU anchors (the
    official ``nms_pre`` fallback). The returned mask flags the boxes
    without an anchor above ``iou_thr`` in both cases.

    Args:
        boxes (np.ndarray | Tensor): (N, 4) x1y1x2y2 boxes in pixels.
        img_wh (Sequence[float]): ``(width, height)`` of the image.
        stride (int): Grid stride in pixels. Defaults to 16.
        sizes (Sequence[float]): Anchor sizes (sqrt of area).
            Defaults to (32, 64, 128, 256).
        ratios (Sequence[float]): Anchor ratios ``h / w``.
            Defaults to (0.5, 0.75, 1.0, 1.5, 2.0).
        iou_thr (float): A candidate must have IoU strictly above it.
            Defaults to 0.5.
        rng: See the module docstring. Defaults to None.
        center_offset (float): Anchor centre offset in strides.
            Defaults to 0.0.
        nms_thr (float, optional): NMS IoU threshold among the candidates
            (a candidate is suppressed by a higher-scored one with IoU
            strictly above it); None: no NMS. Defaults to 0.7.
        clip_anchors (bool): Clip anchors to the image before the IoU.
            Defaults to False.
        fallback (str): ``'top_iou'`` or ``'keep'``. Defaults to 'top_iou'.
        fallback_topk (int): Candidates of a box without an anchor above
            ``iou_thr`` (``'top_iou'``). Defaults to 4000.

    Returns:
        tuple: ``(jittered, fallback)`` -- (N, 4) boxes of the input's kind
        and an (N,) bool mask (numpy or tensor like the input), True where
        no anchor had IoU above ``iou_thr``.
    """
    if fallback not in _FALLBACKS:
        raise ValueError(f'fallback must be one of {_FALLBACKS}, got '
                         f'{fallback!r}')
    if nms_thr is not None and not 0.0 < nms_thr <= 1.0:
        raise ValueError(f'nms_thr must be in (0, 1] or None, got {nms_thr}')
    tensor, was_numpy = _as_tensor(boxes)
    num = len(tensor)
    clipped = _clip_tensor(tensor, img_wh, 1.0)
    anchors = anchor_grid(img_wh, stride, sizes, ratios, center_offset,
                          device=tensor.device).to(tensor.dtype)
    if clip_anchors:
        anchors = _clip_tensor(anchors, img_wh, 1.0)
    out = clipped.clone()
    none = torch.zeros(num, dtype=torch.bool, device=tensor.device)
    chunk = max(1, _MAX_PAIRS // max(1, len(anchors)))
    for start in range(0, num, chunk):
        part = slice(start, start + chunk)
        cand, none[part] = _candidate_mask(
            bbox_overlaps(clipped[part], anchors), iou_thr, fallback,
            fallback_topk)  # (n, A)
        pairs = cand.nonzero()  # (P, 2) as (box, anchor), row-major
        # P scores, then one pick per box
        draws = _uniform((len(pairs) + len(cand), ), rng, was_numpy, tensor)
        scores, picks = draws[:len(pairs)], draws[len(pairs):]
        if nms_thr is not None:
            pairs = pairs[_grouped_nms(anchors[pairs[:, 1]], scores,
                                       pairs[:, 0], nms_thr)]
        count = torch.bincount(pairs[:, 0], minlength=len(cand))  # (n,)
        has = count > 0
        first = count.cumsum(dim=0) - count  # (n,) first survivor per box
        k = torch.minimum((picks * count).long(), (count - 1).clamp(min=0))
        chosen = pairs[(first + k)[has], 1]  # (h,) anchor per box
        out[part][has] = anchors[chosen]
    if was_numpy:
        return _restore(out, True), none.cpu().numpy()
    return out, none


def relative_jitter(boxes: ArrayLike,
                    img_wh: Sequence[float],
                    ratio: float = 0.1,
                    rng: RNG = None) -> ArrayLike:
    """Jitter the centre and the size of each box by up to ``ratio`` (SoCo).

    With ``u`` uniform in ``[-1, 1)`` (four independent draws per box):
    ``cx += u0 * ratio * w``, ``cy += u1 * ratio * h``,
    ``w *= 1 + u2 * ratio``, ``h *= 1 + u3 * ratio``; the result is then
    clipped to the image and made non-degenerate (:func:`clip_boxes`), so
    only boxes at the border can move less than that.

    Args:
        boxes (np.ndarray | Tensor): (N, 4) x1y1x2y2 boxes in pixels.
        img_wh (Sequence[float]): ``(width, height)`` of the image.
        ratio (float): Maximum relative change. Defaults to 0.1.
        rng: See the module docstring. Defaults to None.

    Returns:
        np.ndarray | Tensor: (N, 4) jittered boxes of the input's kind.
    """
    if ratio < 0:
        raise ValueError(f'ratio must be >= 0, got {ratio}')
    tensor, was_numpy = _as_tensor(boxes)
    noise = _uniform((len(tensor), 4), rng, was_numpy, tensor) * 2 - 1
    noise = noise * ratio  # (N, 4)
    w = tensor[:, 2] - tensor[:, 0]
    h = tensor[:, 3] - tensor[:, 1]
    cx = (tensor[:, 0] + tensor[:, 2]) / 2 + noise[:, 0] * w
    cy = (tensor[:, 1] + tensor[:, 3]) / 2 + noise[:, 1] * h
    w = w * (1 + noise[:, 2])
    h = h * (1 + noise[:, 3])
    out = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
    return _restore(_clip_tensor(out, img_wh, 1.0), was_numpy)
