# Copyright (c) mmselfdet contributors. All rights reserved.
"""Box, RoI and homography helpers of the box-level semantic tests
(``test_semantics_boxes.py``).

Everything here is written independently of the model code it checks: the
views are warped from a source image by their homography, boxes are mapped
by their corners in numpy, and RoI features are taken with mmcv's
``roi_align`` on one image's feature map at a time, so a wrong batch index,
level, stride or mapping in the model cannot agree with it by construction.
"""
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.ops import roi_align
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData
from torch import Tensor


# ---------------------------------------------------------------- geometry
def crop_matrix(x0: float, y0: float, side: float, out: int,
                flip: bool = False) -> np.ndarray:
    """Homography (source -> view) of the square crop ``[x0, x0 + side] x
    [y0, y0 + side]`` resized to ``out`` px, then optionally flipped
    horizontally (mmdet's flip matrix ``x -> out - x``)."""
    s = out / side
    mat = np.array([[s, 0, -s * x0], [0, s, -s * y0], [0, 0, 1]])
    if flip:
        mat = np.array([[-1.0, 0, out], [0, 1, 0], [0, 0, 1]]) @ mat
    return mat.astype(np.float32)


def map_box(box: Sequence[float], mat: np.ndarray) -> np.ndarray:
    """Bounding box (4,) of the four corners of ``box`` mapped by ``mat``."""
    x1, y1, x2, y2 = [float(v) for v in box]
    pts = np.array([[x1, x2, x1, x2], [y1, y1, y2, y2], [1, 1, 1, 1]])
    out = np.asarray(mat, np.float64) @ pts  # (3, 4)
    xs, ys = out[0] / out[2], out[1] / out[2]
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def clip_box(box: np.ndarray, size: int) -> Tuple[np.ndarray, float]:
    """Box clipped to a ``size`` x ``size`` view and the fraction of its
    area that is inside."""
    clipped = np.clip(box, 0, size)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-12)
    inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    return clipped, inside / area


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two x1y1x2y2 boxes."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def warp_image(src: Tensor, mat: np.ndarray, out: int) -> Tensor:
    """(3, H, W) uint8 source -> (3, out, out) uint8 view: every view pixel
    center is mapped back through ``inv(mat)`` and sampled bilinearly."""
    inv = np.linalg.inv(np.asarray(mat, np.float64))
    grid = np.arange(out) + 0.5
    xs, ys = np.meshgrid(grid, grid)  # (out, out) each
    pts = inv @ np.stack([xs.ravel(), ys.ravel(), np.ones(out * out)])
    sx, sy = pts[0] / pts[2], pts[1] / pts[2]
    h, w = src.shape[-2:]
    norm = np.stack([sx / w * 2 - 1, sy / h * 2 - 1], -1)  # (out * out, 2)
    norm = torch.tensor(norm, dtype=torch.float32).view(1, out, out, 2)
    img = F.grid_sample(src[None].float(), norm, mode='bilinear',
                        align_corners=False)  # (1, 3, out, out)
    return img[0].round().clamp(0, 255).to(torch.uint8)


def source_images(num: int, size: int) -> List[Tensor]:
    """``num`` different (3, size, size) uint8 images: seeded noise plus one
    bright rectangle at a different place in each."""
    gen = torch.Generator().manual_seed(123)
    imgs = []
    for i in range(num):
        img = torch.randint(0, 120, (3, size, size), generator=gen,
                            dtype=torch.uint8)
        x0, y0 = 8 + 20 * i, 40 - 14 * i
        img[:, y0:y0 + 24, x0:x0 + 20] = 250 - 30 * i
        imgs.append(img)
    return imgs


def view_sample(size: int, mat: np.ndarray,
                boxes: Optional[np.ndarray] = None,
                ids: Optional[Sequence[int]] = None) -> DetDataSample:
    """A packed view sample: ``homography_matrix`` (source -> view) in the
    metainfo and the boxes (view pixels) with their ids."""
    sample = DetDataSample(metainfo=dict(img_shape=(size, size),
                                         homography_matrix=mat))
    boxes = np.zeros((0, 4)) if boxes is None else np.array(boxes)
    inst = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)),
        labels=torch.zeros(len(boxes), dtype=torch.long))
    if ids is not None:
        inst.instances_ids = torch.tensor(list(ids), dtype=torch.long)
    sample.gt_instances = inst
    return sample


def warped_batch(num: int, src_size: int, views: Sequence[str],
                 sizes: Sequence[int], crops: Sequence[Sequence[tuple]],
                 boxes_of: Optional[Callable] = None) -> dict:
    """A collated multi-view batch: view ``v`` of image ``i`` is the
    ``crops[i][v] = (x0, y0, side, flip)`` crop of source image ``i``
    (:func:`source_images`), warped by its homography, which is packed in
    the metainfo; ``boxes_of(i, view, matrix) -> (boxes, ids)`` gives the
    view's boxes (none when None)."""
    data = dict(inputs={v: [] for v in views},
                data_samples={v: [] for v in views})
    for i, src in enumerate(source_images(num, src_size)):
        for v, size, crop in zip(views, sizes, crops[i]):
            mat = crop_matrix(*crop[:3], size, flip=crop[3])
            data['inputs'][v].append(warp_image(src, mat, size))
            boxes, ids = boxes_of(i, v, mat) if boxes_of else (None, None)
            data['data_samples'][v].append(view_sample(size, mat, boxes, ids))
    return data


def shrink(boxes, *args):
    """0.9x about the center, for (..., 4) tensors or arrays: a
    deterministic stand-in for a box jitter (extra args ignored)."""
    ctr = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) * 0.45
    cat = torch.cat if isinstance(boxes, torch.Tensor) else np.concatenate
    return cat([ctr - half, ctr + half], -1)


# ---------------------------------------------------------------- RoIs
def roi_feature(feat: Tensor, box: Sequence[float], stride: int,
                out_size: int) -> Tensor:
    """RoIAlign (aligned, adaptive sampling) of one box on ONE image's
    feature map (1, C, h, w) -> (C, S, S)."""
    assert feat.size(0) == 1, 'one image at a time'
    roi = torch.tensor([[0.0] + [float(v) for v in box]], dtype=feat.dtype)
    return roi_align(feat, roi, (out_size, out_size), 1.0 / stride, 0, 'avg',
                     True)[0]


def size_level(box: Sequence[float], thresholds: Sequence[float]) -> int:
    """FPN level of a box by its size ``sqrt(w * h)``: the number of
    thresholds it reaches (SoCo's rule)."""
    size = float(np.sqrt(max(box[2] - box[0], 0) * max(box[3] - box[1], 0)))
    return sum(size >= t for t in thresholds)


def per_image_features(run: Callable[[Tensor], Sequence[Tensor]],
                       imgs: Tensor) -> List[List[Tensor]]:
    """Feature levels of every image computed alone (a batch of one)."""
    with torch.no_grad():
        return [[f.detach() for f in run(imgs[i:i + 1])]
                for i in range(imgs.size(0))]


def image_index(counts: Sequence[int]) -> Tensor:
    """Image index (R,) of flattened per-image rows."""
    return torch.repeat_interleave(torch.arange(len(counts)),
                                   torch.tensor(list(counts)))


def pool_boxes(feats: Sequence[Sequence[Tensor]],
               boxes: Sequence[Sequence[Sequence[float]]],
               strides: Sequence[int], out_size: int,
               level: Callable[[Sequence[float]], int]) -> Tensor:
    """(R, C, S, S) RoI features of every image's boxes, image by image,
    each on the level ``level(box)`` of that image's own feature maps."""
    rows = []
    for img_feats, img_boxes in zip(feats, boxes):
        for box in img_boxes:
            lvl = level(box)
            rows.append(roi_feature(img_feats[lvl], box, strides[lvl],
                                    out_size))
    return torch.stack(rows)


def visible_boxes(boxes: Sequence[np.ndarray], ids: Sequence[int],
                  mat: np.ndarray, size: int, min_visible: float
                  ) -> Tuple[np.ndarray, List[int]]:
    """Boxes mapped by ``mat`` into a ``size`` view, clipped, and kept
    (with their ids) when at least ``min_visible`` of each stays inside."""
    kept = [(k, clip_box(map_box(b, mat), size)) for k, b in zip(ids, boxes)]
    kept = [(k, c) for k, (c, frac) in kept if frac >= min_visible]
    return (np.array([c for _, c in kept]).reshape(-1, 4),
            [k for k, _ in kept])


def flipped_crop(img: Tensor, box: np.ndarray, size: int, scale: float,
                 width: int) -> Tuple[Tensor, List[float]]:
    """Reference of SoCo's "multiple cropping" with a fixed enlargement and
    a flip: the ``scale``-times box about its center (clipped to the
    image), resampled to ``size`` (aligned, 2 samples per bin) and flipped;
    and the box in the crop's pixels. ``img`` is one (1, C, H, W) image."""
    ctr, wh = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * scale
    region = np.clip(np.concatenate([ctr - wh / 2, ctr + wh / 2]), 0, width)
    roi = torch.tensor([[0.0, *region]], dtype=img.dtype)
    patch = roi_align(img, roi, (size, size), 1.0, 2, 'avg', True).flip(-1)
    rw, rh = region[2:] - region[:2]
    inner = np.clip((box - np.tile(region[:2], 2)) *
                    np.array([size / rw, size / rh] * 2), 0, size)
    return patch, [size - inner[2], inner[1], size - inner[0], inner[3]]


# ---------------------------------------------------------------- capture
@contextmanager
def wrapped(obj, name: str, after: Callable):
    """Temporarily replace ``obj.name`` by a wrapper that calls the original
    and then ``after(result, *args, **kwargs)`` (which may record it)."""
    own = name in vars(obj)
    orig = getattr(obj, name)

    def wrapper(*args, **kwargs):
        out = orig(*args, **kwargs)
        after(out, *args, **kwargs)
        return out

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        if own:
            setattr(obj, name, orig)
        else:
            delattr(obj, name)


def assert_close(got: Tensor, want: Tensor, what) -> None:
    """Equal up to float rounding, relative to the largest value (features
    of 0-255 pixels through a random network reach hundreds)."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = float((got - want).abs().max()) if got.numel() else 0.0
    scale = float(want.abs().max()) if want.numel() else 0.0
    assert err <= 1e-5 * scale + 1e-5, (what, err, scale)


def assert_loss(got: Tensor, want: Tensor, what) -> None:
    """Scalar losses equal up to float32 rounding."""
    got, want = float(got), float(want)
    assert abs(got - want) < 1e-4 * max(1.0, abs(want)), (what, got, want)


@torch.no_grad()
def ema_off_online(ema, seed: int = 2) -> None:
    """Move an mmengine EMA's copy off the online network (each parameter
    times 1 + 0.1 N(0, 1)) and count one step done, so that its next update
    is a real average, not the first-step copy."""
    gen = torch.Generator().manual_seed(seed)
    for p in ema.module.parameters():
        p.mul_(1 + 0.1 * torch.randn(p.shape, generator=gen))
    ema.steps.fill_(1)


def split_by_image(rows: Tensor, img: Tensor, num: int) -> List[Tensor]:
    """Rows of each image, in order."""
    return [rows[img == i] for i in range(num)]


def assert_only_sample_changes(base: Dict[str, Tuple[Tensor, Tensor]],
                               pert: Dict[str, Tuple[Tensor, Tensor]],
                               j: int, num: int) -> None:
    """Rows (name -> (values, image index)) of every image but ``j`` are
    unchanged; some row of ``j`` changed."""
    assert sorted(base) == sorted(pert)
    changed = False
    for name in base:
        a = split_by_image(*base[name], num)
        b = split_by_image(*pert[name], num)
        for i in range(num):
            if i == j:
                changed |= a[i].shape != b[i].shape or not torch.allclose(
                    a[i], b[i], atol=1e-5, rtol=1e-5)
                continue
            assert a[i].shape == b[i].shape, \
                f'{name}: image {i} rows changed count when image {j} moved'
            assert torch.allclose(a[i], b[i], atol=1e-5, rtol=1e-5), \
                f'{name}: image {i} changed when only image {j} was perturbed'
    assert changed, f'perturbing image {j} changed none of its own rows'
