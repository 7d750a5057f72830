# Copyright (c) mmselfdet contributors. All rights reserved.
"""Photometric view transforms (MoCo v2 style) for uint8 BGR images."""

import numbers
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS

_Range = Union[float, Sequence[float]]
# ITU-R BT.601 luma weights in BGR channel order.
_BGR_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def _to_range(
    value: _Range,
    name: str,
    center: float,
    bound: Tuple[float, float],
    clip_first: bool,
) -> Optional[Tuple[float, float]]:
    """Turn a jitter strength or explicit range into a sampling interval.

    A number ``v`` gives ``[center - v, center + v]`` (the lower end clipped
    at 0 when ``clip_first``); a pair is used as given. ``None`` means the op
    is disabled (the interval collapses onto ``center``).
    """
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f'{name} must be non-negative, got {value}')
        low, high = center - float(value), center + float(value)
        if clip_first:
            low = max(low, 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f'{name} must be a number or a (min, max) pair, got {value}')
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f'{name} range {(low, high)} must lie within {bound}')
    if low == high == center:
        return None
    return low, high


def _gray(img: np.ndarray) -> np.ndarray:
    """Luma of a float BGR image, shape ``(H, W, 1)``."""
    return (img @ _BGR_LUMA)[..., None]


def _blend(
    img: np.ndarray, other: Union[np.ndarray, float], factor: float
) -> np.ndarray:
    """``factor * img + (1 - factor) * other`` clamped to ``[0, 255]``."""
    return np.clip(factor * img + (1.0 - factor) * other, 0.0, 255.0)


def _shift_hue(img: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue of a float BGR image in ``[0, 255]`` by ``shift`` turns."""
    hsv = cv2.cvtColor(img / 255.0, cv2.COLOR_BGR2HSV)  # H in [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift * 360.0, 360.0)
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return np.clip(bgr * 255.0, 0.0, 255.0)


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Randomly jitter brightness, contrast, saturation and hue.

    Follows ``torchvision.transforms.ColorJitter`` applied through
    ``RandomApply(p=prob)``: with probability ``prob`` the four operations
    run in a random order, each with a factor drawn uniformly from its range:

    - brightness: scales the image by ``b`` in ``[max(0, 1 - brightness),
      1 + brightness]``;
    - contrast: blends toward the mean of the grayscale image with factor
      ``c`` in ``[max(0, 1 - contrast), 1 + contrast]``;
    - saturation: blends toward the grayscale image with factor ``s`` in
      ``[max(0, 1 - saturation), 1 + saturation]``;
    - hue: rotates the HSV hue by ``h`` in ``[-hue, hue]`` of a full turn.

    A strength of 0 disables that operation. Each strength may also be an
    explicit ``(min, max)`` range. Computation is done in float32 with the
    result clamped to ``[0, 255]`` after every operation and rounded back to
    uint8 at the end. Grayscale uses BT.601 luma weights on BGR channels.

    Required Keys:

    - img (np.uint8, HxWx3 BGR)

    Modified Keys:

    - img

    Args:
        brightness (float | Sequence[float]): Brightness strength or range.
            Defaults to 0.4.
        contrast (float | Sequence[float]): Contrast strength or range.
            Defaults to 0.4.
        saturation (float | Sequence[float]): Saturation strength or range.
            Defaults to 0.4.
        hue (float | Sequence[float]): Hue strength in ``[0, 0.5]`` or a
            range within ``[-0.5, 0.5]``. Defaults to 0.1.
        prob (float): Probability of applying the jitter. Defaults to 0.8.
    """

    def __init__(
        self,
        brightness: _Range = 0.4,
        contrast: _Range = 0.4,
        saturation: _Range = 0.4,
        hue: _Range = 0.1,
        prob: float = 0.8,
    ) -> None:
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.prob = prob
        inf = float('inf')
        self._ranges: List[Optional[Tuple[float, float]]] = [
            _to_range(brightness, 'brightness', 1.0, (0.0, inf), True),
            _to_range(contrast, 'contrast', 1.0, (0.0, inf), True),
            _to_range(saturation, 'saturation', 1.0, (0.0, inf), True),
            _to_range(hue, 'hue', 0.0, (-0.5, 0.5), False),
        ]

    @cache_randomness
    def _sample_params(self) -> Optional[List[Tuple[int, float]]]:
        """Draw whether to apply, the op order and the factors.

        Returns:
            list[tuple[int, float]] | None: ``(op_index, factor)`` pairs in
            application order (0 brightness, 1 contrast, 2 saturation,
            3 hue), or None when the jitter is skipped.
        """
        if np.random.rand() >= self.prob:
            return None
        order = np.random.permutation(4)
        factors = [
            None if rng is None else float(np.random.uniform(rng[0], rng[1]))
            for rng in self._ranges
        ]
        return [(int(i), factors[i]) for i in order if factors[i] is not None]

    def transform(self, results: dict) -> dict:
        """Jitter the colours of ``results['img']``.

        Args:
            results (dict): Result dict with a uint8 BGR ``img``.

        Returns:
            dict: The result dict with the jittered ``img``.
        """
        params = self._sample_params()
        if not params:
            return results
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'ColorJitter expects an HxWx3 image, got {img.shape}')
        out = img.astype(np.float32)
        for op, factor in params:
            if op == 0:
                out = _blend(out, 0.0, factor)
            elif op == 1:
                out = _blend(out, float(_gray(out).mean()), factor)
            elif op == 2:
                out = _blend(out, _gray(out), factor)
            else:
                out = _shift_hue(out, factor)
        results['img'] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}('
            f'brightness={self.brightness}, '
            f'contrast={self.contrast}, '
            f'saturation={self.saturation}, '
            f'hue={self.hue}, '
            f'prob={self.prob})'
        )


@TRANSFORMS.register_module()
class GaussianBlur(BaseTransform):
    """Blur the image with a Gaussian of random standard deviation.

    With probability ``prob`` a sigma is drawn uniformly from
    ``[sigma_min, sigma_max]`` and ``cv2.GaussianBlur`` is applied with the
    kernel size derived from sigma by OpenCV (``ksize=(0, 0)``), as in the
    MoCo v2 / SimCLR augmentation. The image shape is preserved, including
    a trailing single-channel axis.

    Required Keys:

    - img

    Modified Keys:

    - img

    Args:
        sigma_min (float): Lower bound of sigma. Defaults to 0.1.
        sigma_max (float): Upper bound of sigma. Defaults to 2.0.
        prob (float): Probability of blurring. Defaults to 0.5.
    """

    def __init__(
        self, sigma_min: float = 0.1, sigma_max: float = 2.0, prob: float = 0.5
    ) -> None:
        super().__init__()
        if not 0.0 < sigma_min <= sigma_max:
            raise ValueError(
                'need 0 < sigma_min <= sigma_max, '
                f'got sigma_min={sigma_min}, sigma_max={sigma_max}'
            )
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.prob = prob

    @cache_randomness
    def _sample_sigma(self) -> Optional[float]:
        """Return the sigma to blur with, or None to skip blurring."""
        if np.random.rand() >= self.prob:
            return None
        return float(np.random.uniform(self.sigma_min, self.sigma_max))

    def transform(self, results: dict) -> dict:
        """Blur ``results['img']``.

        Args:
            results (dict): Result dict with an ``img``.

        Returns:
            dict: The result dict with the (possibly) blurred ``img``.
        """
        sigma = self._sample_sigma()
        if sigma is None:
            return results
        img = results['img']
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)
        results['img'] = blurred.reshape(img.shape)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}('
            f'sigma_min={self.sigma_min}, '
            f'sigma_max={self.sigma_max}, '
            f'prob={self.prob})'
        )


_PLACEMENTS = ('inside', 'center')


@TRANSFORMS.register_module()
class RandomCutoutInBoxes(BaseTransform):
    """Fill a random square inside each box with a constant colour (SoCo's
    V2 / V3 "cutout in box", official ``RandomCutoutInBbox`` of
    ``contrast/data/transform_ops.py``).

    Each box of ``gt_bboxes`` (a repeated box once per copy, as the
    official code loops over the padded list) independently, with
    probability ``prob``: a ratio ``r`` is drawn uniformly in ``ratio`` and
    a square of side ``round(sqrt(r * box area))`` px is filled with
    ``fill``, by default the ImageNet mean (the official code writes 0 into
    the normalised tensor, i.e. the mean colour). Placement:

    * ``'inside'`` (default): the square lies inside the box (its sides cut
      to the box's inner pixels when the box is thinner than the square),
      at a uniform position;
    * ``'center'`` (the official code): the square is centred on a uniform
      integer point of the box and clipped to the image only, so it may
      reach outside the box.

    Apply it after the colour augmentations (the official order: colour,
    then cutout on the normalised tensor) and in the V2 / V3 pipelines only.

    Required Keys:

    - img (np.uint8, HxWx3 BGR)
    - gt_bboxes (BaseBoxes | np.ndarray, x1y1x2y2 in the image)

    Modified Keys:

    - img

    Args:
        prob (float): Probability per box. Defaults to 0.5.
        ratio (Sequence[float]): Range of the square's area as a fraction
            of the box area. Defaults to (0.1, 0.3) (the official FPN
            scripts' ``cutout_ratio_min/max``).
        placement (str): 'inside' or 'center'. Defaults to 'inside'.
        fill (float | Sequence[float]): Fill value, one per channel (BGR).
            Defaults to (104, 116, 124), the ImageNet mean.
    """

    def __init__(self,
                 prob: float = 0.5,
                 ratio: Sequence[float] = (0.1, 0.3),
                 placement: str = 'inside',
                 fill: Union[float, Sequence[float]] = (104, 116, 124)
                 ) -> None:
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1] <= 1:
            raise ValueError(f'ratio must be (min, max) with 0 < min <= max '
                             f'<= 1, got {ratio}')
        if placement not in _PLACEMENTS:
            raise ValueError(f'placement must be one of {_PLACEMENTS}, got '
                             f'{placement!r}')
        self.prob = float(prob)
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.placement = placement
        self.fill = fill

    @cache_randomness
    def _sample_squares(self, boxes: np.ndarray, width: int,
                        height: int) -> List[Tuple[int, int, int, int]]:
        """The ``(x0, y0, x1, y1)`` pixel regions to fill (end exclusive)."""
        squares = []
        for x1, y1, x2, y2 in boxes:
            if np.random.rand() >= self.prob:
                continue
            r = np.random.uniform(*self.ratio)
            side = max(1, int(round(np.sqrt(r * (x2 - x1) * (y2 - y1)))))
            if self.placement == 'inside':
                px0, py0 = int(np.ceil(x1)), int(np.ceil(y1))
                avail_w = int(np.floor(x2)) - px0
                avail_h = int(np.floor(y2)) - py0
                if avail_w <= 0 or avail_h <= 0:
                    continue
                sw, sh = min(side, avail_w), min(side, avail_h)
                x0 = px0 + int(np.random.randint(0, avail_w - sw + 1))
                y0 = py0 + int(np.random.randint(0, avail_h - sh + 1))
                squares.append((x0, y0, x0 + sw, y0 + sh))
            else:
                cx = int(np.random.randint(int(np.floor(x1)),
                                           max(int(np.ceil(x2)),
                                               int(np.floor(x1)) + 1)))
                cy = int(np.random.randint(int(np.floor(y1)),
                                           max(int(np.ceil(y2)),
                                               int(np.floor(y1)) + 1)))
                x0, y0 = cx - side // 2, cy - side // 2
                squares.append((max(x0, 0), max(y0, 0),
                                min(x0 + side, width), min(y0 + side, height)))
        return squares

    def transform(self, results: dict) -> dict:
        """Cut the squares out of ``results['img']``.

        Args:
            results (dict): Result dict with ``img`` and ``gt_bboxes``.

        Returns:
            dict: The result dict with the cut ``img``.
        """
        boxes = results.get('gt_bboxes')
        if boxes is None:
            raise KeyError('RandomCutoutInBoxes needs gt_bboxes (the view '
                           'boxes, e.g. from SoCoViews)')
        boxes = boxes.numpy() if hasattr(boxes, 'numpy') else \
            np.asarray(boxes)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        img = results['img']
        squares = self._sample_squares(boxes, img.shape[1], img.shape[0])
        if squares:
            img = img.copy()
            fill = np.asarray(self.fill, np.float64)
            for x0, y0, x1, y1 in squares:
                img[y0:y1, x0:x1] = np.clip(np.rint(fill), 0, 255).astype(
                    img.dtype)
            results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'prob={self.prob}, '
                f'ratio={self.ratio}, '
                f'placement={self.placement!r}, '
                f'fill={self.fill})')
