# Copyright (c) mmselfdet contributors. All rights reserved.
"""Geometric view transforms that keep boxes, masks and geometry in sync."""

import math
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type

# Per-instance keys that must stay aligned with ``gt_bboxes``.
_INSTANCE_KEYS = ('gt_bboxes_labels', 'gt_ignore_flags', 'gt_instances_ids')
#: an integer pixel region ``(x0, y0, x1, y1)``
CropBox = Tuple[int, int, int, int]


def sample_resized_crop(region: CropBox,
                        crop_scale: Sequence[float],
                        ratio: Sequence[float],
                        max_attempts: int = 10,
                        y_first: bool = False) -> CropBox:
    """RandomResizedCrop's region sampling inside an integer ``region``.

    The one sampler of every view maker (``RandomResizedCropWithBoxes``,
    ``RandomCropViews``, ``JigsawPatches``, ``InstanceComposite`` on the
    whole image; ``ObjectAwareCrops`` and ``SoCoViews`` on the image or in a
    box). The crop area is a uniform fraction ``crop_scale`` of the region's
    area, its aspect ratio (w / h) log-uniform in ``ratio``, and it must fit
    in the region, as ``torchvision``'s ``RandomResizedCrop`` draws it.
    After ``max_attempts`` misses the largest centred crop of the region
    with the aspect ratio clamped to ``ratio`` is used.

    Draws from numpy's global generator: call it from a
    ``@cache_randomness`` method.

    Args:
        region (tuple[int, int, int, int]): ``(x0, y0, x1, y1)`` to crop in.
        crop_scale (Sequence[float]): Range of the crop area as a fraction
            of the region's area.
        ratio (Sequence[float]): Range of the aspect ratio (w / h), sampled
            log-uniformly.
        max_attempts (int): Draws before the central-crop fallback.
            Defaults to 10.
        y_first (bool): Draw the top offset before the left one (torchvision's
            order, kept by the whole-image makers so that seeded runs draw
            the regions they always drew); the box-level makers draw the
            left offset first. Defaults to False.

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
            if y_first:
                dy = int(np.random.randint(0, height - crop_h + 1))
                dx = int(np.random.randint(0, width - crop_w + 1))
            else:
                dx = int(np.random.randint(0, width - crop_w + 1))
                dy = int(np.random.randint(0, height - crop_h + 1))
            x0, y0 = rx0 + dx, ry0 + dy
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


@TRANSFORMS.register_module()
class RandomResizedCropWithBoxes(BaseTransform):
    """Crop a random region and resize it to a fixed size, box-aware.

    The crop region is sampled the way ``torchvision``'s ``RandomResizedCrop``
    does it: the area is a uniform fraction ``crop_scale`` of the image area,
    the aspect ratio (w / h) is log-uniform in ``ratio``, and the region must
    lie inside the image. After ``max_attempts`` failed draws a central crop
    with the aspect ratio clamped to ``ratio`` is used instead (all of it
    :func:`sample_resized_crop`). The region is then resized (up or down)
    to exactly ``scale``.

    Boxes are translated into the crop and rescaled to the output size (and
    clipped to it when ``clip_object_border``). Boxes whose visible width or
    height in the output view is below ``min_box_size`` (or zero) are dropped
    together with the aligned entries of ``gt_bboxes_labels``,
    ``gt_ignore_flags``, ``gt_masks`` and ``gt_instances_ids``. Unlike
    mmdet's ``RandomCrop`` the sample is never discarded when no box
    survives: unlabeled and box-free views are valid for pretraining.

    The geometry of the view is composed into ``homography_matrix`` with the
    mmdet convention ``H = H_this @ H_previous``, so a point ``(x, y, 1)`` of
    the original image maps into the view by the stored matrix. No other
    keys (e.g. ``scale_factor``) are added.

    Required Keys:

    - img
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_seg_map (np.uint8) (optional)
    - gt_instances_ids (np.int64) (optional)
    - homography_matrix (np.float32) (optional)

    Modified Keys:

    - img
    - img_shape
    - gt_bboxes (optional)
    - gt_bboxes_labels (optional)
    - gt_ignore_flags (optional)
    - gt_masks (optional)
    - gt_seg_map (optional)
    - gt_instances_ids (optional)
    - homography_matrix (optional)

    Added Keys:

    - homography_matrix

    Args:
        scale (int | Sequence[int]): Output size, an int for a square view or
            ``(w, h)``.
        crop_scale (Sequence[float]): Range of the crop area as a fraction of
            the image area. Defaults to ``(0.08, 1.0)``.
        ratio (Sequence[float]): Range of the crop aspect ratio (w / h),
            sampled log-uniformly. Defaults to ``(3 / 4, 4 / 3)``.
        max_attempts (int): Number of random draws before falling back to
            the central crop. ``0`` always uses the central crop.
            Defaults to 10.
        interpolation (str): Image interpolation method of ``mmcv.imresize``
            ("nearest", "bilinear", "bicubic", "area", "lanczos").
            Defaults to 'bilinear'.
        clip_object_border (bool): Whether to clip boxes to the view.
            Defaults to True.
        min_box_size (float): Minimum visible width and height, in output
            pixels, for a box to be kept. Defaults to 1.0.
    """

    def __init__(
        self,
        scale: Union[int, Sequence[int]],
        crop_scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        max_attempts: int = 10,
        interpolation: str = 'bilinear',
        clip_object_border: bool = True,
        min_box_size: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(scale, int):
            scale = (scale, scale)
        scale = tuple(int(s) for s in scale)
        if len(scale) != 2 or min(scale) <= 0:
            raise ValueError(f'scale must be a positive int or (w, h), got {scale}')
        if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1]:
            raise ValueError(
                f'crop_scale must be (min, max) with 0 < min <= max, got {crop_scale}'
            )
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(
                f'ratio must be (min, max) with 0 < min <= max, got {ratio}'
            )
        if max_attempts < 0:
            raise ValueError(f'max_attempts must be >= 0, got {max_attempts}')
        if interpolation not in cv2_interp_codes:
            raise ValueError(
                f'interpolation must be one of {sorted(cv2_interp_codes)}, '
                f'got {interpolation!r}'
            )
        if min_box_size < 0:
            raise ValueError(f'min_box_size must be >= 0, got {min_box_size}')
        self.scale: Tuple[int, int] = scale  # (w, h)
        self.crop_scale = tuple(float(s) for s in crop_scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.max_attempts = int(max_attempts)
        self.interpolation = interpolation
        self.clip_object_border = clip_object_border
        self.min_box_size = float(min_box_size)

    @cache_randomness
    def _sample_crop(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw a crop region with :func:`sample_resized_crop`.

        Args:
            height (int): Image height.
            width (int): Image width.

        Returns:
            tuple[int, int, int, int]: ``(x0, y0, crop_w, crop_h)`` in pixels.
        """
        x0, y0, x1, y1 = sample_resized_crop(
            (0, 0, width, height), self.crop_scale, self.ratio,
            self.max_attempts, y_first=True)
        return x0, y0, x1 - x0, y1 - y0

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Crop a random region of ``results['img']`` and resize it.

        Args:
            results (dict): Result dict from the loading pipeline.

        Returns:
            dict: The view, with the keys listed in the class docstring
            updated.
        """
        height, width = results['img'].shape[:2]
        x0, y0, crop_w, crop_h = self._sample_crop(height, width)
        return crop_resize_view(
            results, (x0, y0, x0 + crop_w, y0 + crop_h), self.scale,
            interpolation=self.interpolation,
            clip_object_border=self.clip_object_border,
            min_box_size=self.min_box_size)

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}('
            f'scale={self.scale}, '
            f'crop_scale={self.crop_scale}, '
            f'ratio={self.ratio}, '
            f'max_attempts={self.max_attempts}, '
            f'interpolation={self.interpolation!r}, '
            f'clip_object_border={self.clip_object_border}, '
            f'min_box_size={self.min_box_size})'
        )


def compose_homography(results: dict, matrix: np.ndarray) -> None:
    """Left-multiply ``matrix`` onto ``results['homography_matrix']``
    (mmdet's convention: the stored matrix maps the original image into the
    current view)."""
    previous = results.get('homography_matrix', None)
    if previous is None:
        previous = np.eye(3, dtype=np.float32)
    results['homography_matrix'] = (matrix @ previous).astype(np.float32)


def crop_resize_view(results: dict,
                     crop_box: Sequence[int],
                     out_size: Tuple[int, int],
                     interpolation: str = 'bilinear',
                     clip_object_border: bool = True,
                     min_box_size: float = 1.0) -> dict:
    """Crop ``crop_box`` (x1, y1, x2, y2, integer pixels inside the image)
    out of ``results['img']`` and resize it to ``out_size`` (w, h), moving
    boxes, masks, seg maps and the homography with it.

    This is the one crop-and-resize every view maker uses
    (:class:`RandomResizedCropWithBoxes`, object-aware crops, SoCo views):
    boxes whose visible width or height in the view is zero or below
    ``min_box_size`` are dropped with their aligned keys (labels, ignore
    flags, instance ids, masks). ``results['gt_bboxes']`` must be mmdet
    boxes (call inside ``autocast_box_type``) or absent.

    Returns:
        dict: ``results``, modified in place.
    """
    img = results['img']
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    crop_w, crop_h = x1 - x0, y1 - y0
    if crop_w <= 0 or crop_h <= 0:
        raise ValueError(f'empty crop box {tuple(crop_box)} for image '
                         f'{results.get("img_path", "")}')
    out_w, out_h = out_size
    scale_x, scale_y = out_w / crop_w, out_h / crop_h

    patch = img[y0:y1, x0:x1, ...]
    view = mmcv.imresize(patch, (out_w, out_h), interpolation=interpolation)
    if img.ndim == 3 and view.ndim == 2:
        view = view[..., None]  # cv2 drops a single channel axis
    results['img'] = view
    results['img_shape'] = view.shape[:2]

    keep: Optional[np.ndarray] = None
    bboxes = results.get('gt_bboxes', None)
    if bboxes is not None:
        bboxes.translate_([-x0, -y0])
        bboxes.rescale_((scale_x, scale_y))
        if clip_object_border:
            bboxes.clip_((out_h, out_w))
            visible = bboxes
        else:
            visible = bboxes.clone()
            visible.clip_((out_h, out_w))
        widths = visible.widths.numpy()
        heights = visible.heights.numpy()
        keep = ((widths > 0) & (heights > 0) & (widths >= min_box_size)
                & (heights >= min_box_size))
        results['gt_bboxes'] = bboxes[keep]
        for key in _INSTANCE_KEYS:
            if results.get(key, None) is not None:
                results[key] = results[key][keep]

    masks = results.get('gt_masks', None)
    if masks is not None:
        if keep is not None:
            masks = masks[np.nonzero(keep)[0]]
        results['gt_masks'] = masks.crop(
            np.array([x0, y0, x1, y1], dtype=np.int64)).resize((out_h, out_w))

    seg_map = results.get('gt_seg_map', None)
    if seg_map is not None:
        results['gt_seg_map'] = mmcv.imresize(
            seg_map[y0:y1, x0:x1], (out_w, out_h), interpolation='nearest')

    matrix = np.array([[scale_x, 0.0, -scale_x * x0],
                       [0.0, scale_y, -scale_y * y0],
                       [0.0, 0.0, 1.0]], dtype=np.float32)
    compose_homography(results, matrix)
    return results
