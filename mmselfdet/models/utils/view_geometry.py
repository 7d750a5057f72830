# Copyright (c) mmselfdet contributors. All rights reserved.
"""Box geometry between packed views, on the device (batched torch).

Every packed view carries ``homography_matrix`` (source image -> view) in
its metainfo (:class:`~mmselfdet.datasets.transforms.PackViewInputs`), so a
box found in one view at training time (e.g. by the heat-map proposer) is
mapped into another view through ``H_b @ inv(H_a)`` — never recomputed from
random state.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.ops import roi_align
from torch import Tensor


def view_matrices(samples: Sequence, device: torch.device) -> Tensor:
    """(B, 3, 3) float64 homographies (source image -> view) of a view's
    samples; a clear error when a pipeline dropped them."""
    mats = []
    for s in samples:
        mat = s.metainfo.get('homography_matrix')
        if mat is None:
            raise KeyError(
                'a view sample has no homography_matrix in its metainfo; '
                'pack views with PackViewInputs (it keeps the geometry the '
                'model needs to map boxes between views)')
        mats.append(torch.as_tensor(mat, dtype=torch.float64))
    return torch.stack(mats).to(device)


def map_boxes_batched(boxes: Tensor, matrix: Tensor) -> Tensor:
    """Map (B, K, 4) x1y1x2y2 boxes by (B, 3, 3) homographies; the result is
    the bounding box of the mapped corners (exact for the scale / translate
    / flip matrices views use)."""
    x1, y1, x2, y2 = boxes.double().unbind(-1)
    xs = torch.stack([x1, x2, x1, x2], -1)  # (B, K, 4 corners)
    ys = torch.stack([y1, y1, y2, y2], -1)
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -2)  # (B, K, 3, 4)
    mapped = torch.einsum('bij,bkjn->bkin', matrix.double(), pts)
    px = mapped[:, :, 0] / mapped[:, :, 2]
    py = mapped[:, :, 1] / mapped[:, :, 2]
    out = torch.stack([px.min(-1).values, py.min(-1).values,
                       px.max(-1).values, py.max(-1).values], -1)
    return out.to(boxes.dtype)


def clip_visible(boxes: Tensor, img_wh: Tuple[float, float],
                 min_visible: float) -> Tuple[Tensor, Tensor]:
    """Clip (..., 4) boxes to the image; a box is visible when the clipped
    part keeps at least ``min_visible`` of its area.

    Returns:
        tuple: clipped boxes and the (...,) bool visibility.
    """
    width, height = float(img_wh[0]), float(img_wh[1])
    clipped = torch.stack([boxes[..., 0].clamp(0, width),
                           boxes[..., 1].clamp(0, height),
                           boxes[..., 2].clamp(0, width),
                           boxes[..., 3].clamp(0, height)], -1)
    area = ((boxes[..., 2] - boxes[..., 0]) *
            (boxes[..., 3] - boxes[..., 1])).clamp(min=1e-12)
    inside = ((clipped[..., 2] - clipped[..., 0]).clamp(min=0) *
              (clipped[..., 3] - clipped[..., 1]).clamp(min=0))
    return clipped, (inside / area >= min_visible) & (inside > 0)


def shared_region(src_matrix: Tensor, dst_matrices: Sequence[Tensor],
                  dst_wh: Sequence[Tuple[float, float]],
                  src_wh: Tuple[float, float]) -> Tensor:
    """(B, 4) region of the source view that every destination view sees:
    each destination's full frame mapped back into the source view,
    intersected (and clipped to the source view)."""
    num = src_matrix.size(0)
    width, height = float(src_wh[0]), float(src_wh[1])
    region = src_matrix.new_tensor([0.0, 0.0, width, height]).expand(num, 4)
    for mat, (w, h) in zip(dst_matrices, dst_wh):
        frame = mat.new_tensor([0.0, 0.0, float(w), float(h)]).expand(
            num, 1, 4)
        back = map_boxes_batched(frame, src_matrix @ torch.linalg.inv(mat))
        region = torch.cat([torch.maximum(region[:, :2], back[:, 0, :2]),
                            torch.minimum(region[:, 2:], back[:, 0, 2:])], 1)
    # an empty intersection (crops that do not overlap) falls back to the
    # whole source view
    empty = (region[:, 2] <= region[:, 0]) | (region[:, 3] <= region[:, 1])
    whole = region.new_tensor([0.0, 0.0, width, height]).expand(num, 4)
    return torch.where(empty[:, None], whole, region).float()


def crop_patches(img: Tensor,
                 boxes: Tensor,
                 batch_idx: Tensor,
                 size: int,
                 scale_range: Tuple[float, float] = (1.0, 1.0),
                 flip_prob: float = 0.5,
                 generator: Optional[torch.Generator] = None
                 ) -> Tuple[Tensor, Tensor]:
    """Square crops around boxes (the "multiple cropping" of §5).

    Each box is enlarged about its center by a factor drawn uniformly from
    ``scale_range``, clipped to the image, RoI-aligned from ``img`` to
    ``size`` x ``size`` (bilinear, aligned) and flipped horizontally with
    ``flip_prob``.

    Args:
        img (Tensor): (B, C, H, W) normalised images.
        boxes (Tensor): (R, 4) boxes in ``img`` pixels.
        batch_idx (Tensor): (R,) image of each box.
        size (int): Side of the crops.
        scale_range (tuple[float, float]): Enlargement range (>= 1 keeps
            the whole box in the crop).
        flip_prob (float): Probability of a horizontal flip.
        generator (torch.Generator, optional): For the draws.

    Returns:
        tuple: ``patches`` (R, C, size, size) and each box in its patch's
        pixels (R, 4).
    """
    num = boxes.size(0)
    height, width = img.shape[-2:]
    gen_device = generator.device if generator is not None else boxes.device

    def uniform(*shape):
        return torch.rand(*shape, generator=generator,
                          device=gen_device).to(boxes)

    lo, hi = scale_range
    scale = lo + (hi - lo) * uniform(num, 1)
    ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    region = torch.cat([ctr - half, ctr + half], 1)
    limit = boxes.new_tensor([width, height, width, height], dtype=boxes.dtype)
    region = torch.minimum(region.clamp(min=0), limit)
    rois = torch.cat([batch_idx[:, None].to(boxes), region], 1)
    # mmcv's kernel reads NCHW: a channels_last image would be misread
    patches = roi_align(img.contiguous(), rois.to(img.dtype), (size, size),
                        1.0, 2, 'avg', True)
    wh = (region[:, 2:] - region[:, :2]).clamp(min=1e-6)
    inner = (boxes - region[:, :2].repeat(1, 2)) * (size / wh).repeat(1, 2)
    inner = inner.clamp(0, size)
    flip = uniform(num) < flip_prob
    patches = torch.where(flip[:, None, None, None], patches.flip(-1), patches)
    flipped = torch.stack([size - inner[:, 2], inner[:, 1],
                           size - inner[:, 0], inner[:, 3]], 1)
    inner = torch.where(flip[:, None], flipped, inner)
    return patches, inner
