# Copyright (c) mmselfdet contributors. All rights reserved.
"""A view's pixel augmentations as batched, per-sample-random tensor ops
(issue 18): the twins of the CPU pipeline's ``ColorJitter``,
``RandomGrayscale``, ``GaussianBlur``, ``Solarize``, ``RandomFlip`` and
``RandomCutoutInBoxes``,
run by :class:`~mmselfdet.models.data_preprocessors.MultiViewDataPreprocessor`
on the device the batch is on, so CPU workers only decode and crop.

Each op is configured with the arguments of its CPU transform (the same
dicts as in the pipeline) and has two steps: ``draw(num, generator)`` makes
the per-sample parameters on the CPU from a ``torch.Generator`` (so a draw
never waits for the device and is the same on every device), ``apply``
applies them to (N, 3, H, W) RGB images in [0, 1]. Values are rounded to
the uint8 grid where the CPU transforms round (after the colour jitter,
grayscale truncates like mmcv, after the blur), so both paths give the same
distributions (``tests/test_models/test_batched_augment_stats.py``).
"""
import numbers
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .batched_box_ops import (BatchedCutoutInBoxes, BatchedHorizontalFlip,
                              Params)
from .photometric import (_blend, _blur, _const, _gray, _shift_hue,
                          cv2_kernel_radius)


def _uniform(num: int, low: float, high: float,
             generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(num, generator=generator)


def _jitter_range(value, name: str, center: float, clip_low: bool):
    """A strength ``v`` -> ``[center - v, center + v]`` (torchvision's
    ColorJitter), or an explicit ``(min, max)`` pair; None when disabled."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f'ColorJitter: {name} must be >= 0, got {value}')
        low, high = center - float(value), center + float(value)
        low = max(low, 0.0) if clip_low else low
    elif isinstance(value, Sequence) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f'ColorJitter: {name} must be a number or a (min, '
                        f'max) pair, got {value!r}')
    return None if low == high == center else (low, high)


def _quantize(img: Tensor) -> Tensor:
    """Round [0, 1] values to the uint8 grid (``np.rint`` of x * 255)."""
    return torch.round(img * 255) / 255


def _rows(mask: Tensor, device: torch.device) -> Optional[Tensor]:
    """Indices (on ``device``) of the True entries of a CPU mask, or None
    when there are none (decided on the CPU: no device sync)."""
    idx = mask.nonzero().flatten()
    return idx.to(device, non_blocking=True) if idx.numel() else None


class BatchedColorJitter:
    """torchvision's ``RandomApply(ColorJitter(...), p=prob)``: per sample,
    with probability ``prob``, brightness / contrast / saturation / hue in
    a random order (one permutation per sample), factors uniform in their
    ranges; the twin of ``mmselfdet.datasets.transforms.ColorJitter``."""

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4,
                 hue=0.1, prob=0.8) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'ColorJitter: prob must be in [0, 1], got '
                             f'{prob}')
        self.prob = float(prob)
        self.ranges = [
            _jitter_range(brightness, 'brightness', 1.0, True),
            _jitter_range(contrast, 'contrast', 1.0, True),
            _jitter_range(saturation, 'saturation', 1.0, True),
            _jitter_range(hue, 'hue', 0.0, False)]
        if self.ranges[3] and not -0.5 <= self.ranges[3][0] <= \
                self.ranges[3][1] <= 0.5:
            raise ValueError(f'ColorJitter: hue range {self.ranges[3]} must '
                             'lie within [-0.5, 0.5]')

    def draw(self, num: int, generator: torch.Generator) -> Params:
        on = torch.rand(num, generator=generator) < self.prob
        order = torch.rand(num, 4, generator=generator).argsort(1)  # (N, 4)
        factors = torch.stack([
            _uniform(num, *(r or (0.0, 0.0)), generator) for r in self.ranges
        ], 1)  # (N, 4): brightness, contrast, saturation, hue
        return dict(on=on, order=order, factors=factors)

    def apply(self, img: Tensor, p: Params) -> Tensor:
        # which rows get which op at each position, and their factors,
        # decided on the CPU and moved in two copies (not one per subset)
        plan, rows, facs, start = [], [], [], 0
        for pos in range(4):
            for op, rng in enumerate(self.ranges):
                if rng is None:
                    continue
                idx = (p['on'] & (p['order'][:, pos] == op)).nonzero(
                ).flatten()
                if idx.numel():
                    plan.append((op, start, start + idx.numel()))
                    rows.append(idx)
                    facs.append(p['factors'][idx, op])
                    start += idx.numel()
        if not plan:
            return _quantize(img)
        rows_d = torch.cat(rows).to(img.device, non_blocking=True)
        facs_d = torch.cat(facs).to(img.device, img.dtype, non_blocking=True)
        out = img.clone()
        for op, a, b in plan:
            idx, f = rows_d[a:b], facs_d[a:b]
            sub = out[idx]
            if op == 0:
                sub = _blend(sub, 0.0, f)
            elif op == 1:
                sub = _blend(sub, _gray(sub).mean((1, 2, 3), True), f)
            elif op == 2:
                sub = _blend(sub, _gray(sub), f)
            else:
                sub = _shift_hue(sub, f)
            out.index_copy_(0, idx, sub)  # out is our clone
        return _quantize(out)


class BatchedGrayscale:
    """mmcv's ``RandomGrayscale`` (``keep_channels=True``): with
    probability ``prob`` every channel becomes the weighted sum of the
    channels, truncated to an integer as mmcv's ``astype(uint8)`` does.
    ``channel_weights`` are in the pipeline's channel order (BGR for the
    images mmcv decodes)."""

    def __init__(self, prob=0.1, keep_channels=True,
                 channel_weights=(1., 1., 1.), color_format='bgr',
                 input_bgr: bool = True) -> None:
        if not keep_channels or color_format != 'bgr':
            raise ValueError('RandomGrayscale: the batched op supports '
                             "keep_channels=True, color_format='bgr' only "
                             '(views stay 3-channel)')
        w = torch.tensor(channel_weights, dtype=torch.float64)
        w = w / w.sum()
        self.weights = w.flip(0) if input_bgr else w  # RGB order
        self.prob = float(prob)

    def draw(self, num: int, generator: torch.Generator) -> Params:
        return dict(gray=torch.rand(num, generator=generator) < self.prob)

    def apply(self, img: Tensor, p: Params) -> Tensor:
        idx = _rows(p['gray'], img.device)
        if idx is None:
            return img
        w = _const(tuple(self.weights.tolist()), img.device, torch.float64)
        sub = img[idx]
        # float64 like numpy, so the truncation agrees at integer sums
        gray = torch.floor((torch.round(sub.double() * 255) * w).sum(
            1, keepdim=True)).to(img.dtype) / 255  # (n, 1, H, W)
        return img.index_copy(0, idx, gray.expand_as(sub))


class BatchedGaussianBlur:
    """``GaussianBlur``: with probability ``prob`` sigma uniform in
    ``[sigma_min, sigma_max]``, OpenCV's kernel size for that sigma
    (:func:`cv2_kernel_radius`), reflect-101 borders; separable grouped
    convolution, one kernel per sample."""

    def __init__(self, sigma_min=0.1, sigma_max=2.0, prob=0.5) -> None:
        if not 0 < sigma_min <= sigma_max:
            raise ValueError(f'GaussianBlur: need 0 < sigma_min <= sigma_max'
                             f', got {sigma_min}, {sigma_max}')
        self.sigma, self.prob = (float(sigma_min), float(sigma_max)), prob

    def draw(self, num: int, generator: torch.Generator) -> Params:
        on = torch.rand(num, generator=generator) < self.prob
        sigma = _uniform(num, *self.sigma, generator)
        return dict(sigma=torch.where(on, sigma, torch.zeros(num)))

    def apply(self, img: Tensor, p: Params) -> Tensor:
        idx = _rows(p['sigma'] > 0, img.device)
        if idx is None:
            return img
        sigma = p['sigma'][p['sigma'] > 0]
        sub = _blur(img[idx], sigma, cv2_kernel_radius(sigma))  # CPU
        return img.index_copy(0, idx, _quantize(sub))


class BatchedSolarize:
    """mmdet's ``Solarize``: with probability ``prob`` pixels ``>=``
    a threshold (uniform in ``[min_mag, max_mag]`` of 255, rounded to 0.1
    as mmdet's ``level_to_mag``) become ``255 - x``."""

    def __init__(self, prob=1.0, level=None, min_mag=0.0, max_mag=256.0
                 ) -> None:
        if level is not None:
            raise ValueError('Solarize: the batched op supports level=None '
                             'only (threshold uniform in [min_mag, max_mag])')
        self.prob, self.mag = float(prob), (float(min_mag), float(max_mag))

    def draw(self, num: int, generator: torch.Generator) -> Params:
        on = torch.rand(num, generator=generator) < self.prob
        thr = torch.round(_uniform(num, *self.mag, generator) * 10) / 10
        return dict(on=on, threshold=thr)

    def apply(self, img: Tensor, p: Params) -> Tensor:
        thr = p['threshold'].to(img.device, img.dtype).view(-1, 1, 1, 1)
        on = p['on'].to(img.device).view(-1, 1, 1, 1)
        flip = on & (torch.round(img * 255) >= thr)
        return torch.where(flip, 1 - img, img)


OPS = dict(ColorJitter=BatchedColorJitter, RandomGrayscale=BatchedGrayscale,
           GaussianBlur=BatchedGaussianBlur, Solarize=BatchedSolarize,
           RandomFlip=BatchedHorizontalFlip,
           RandomCutoutInBoxes=BatchedCutoutInBoxes)


class BatchedViewAugment:
    """One view's op list, e.g. ``[dict(type='ColorJitter', ...),
    dict(type='RandomGrayscale', ...), dict(type='GaussianBlur', ...),
    dict(type='RandomFlip', prob=0.5)]`` (the CPU pipeline's dicts).

    Patch mode (DetCo's jigsaw tiles, ``JigsawPatches`` with a
    ``patch_pipeline``): ``dict(ops=[...], patch_grid=3)`` applies the ops
    to each of the ``grid x grid`` patches of a tile as its own sample
    (independent draws, blur borders per patch); boxes and flips are not
    allowed there (the patch crops and flips stay on the CPU).

    Args:
        ops (list[dict] | dict): Op configs, applied in order, or
            ``dict(ops=[...], patch_grid=G)``.
        name (str): The view (for error messages).
        input_bgr (bool): Whether the images arrive in BGR order (mmcv's
            decoder; the preprocessor's ``bgr_to_rgb=True``).
    """

    def __init__(self, ops, name: str = 'view',
                 input_bgr: bool = True) -> None:
        self.name, self.ops, self.input_bgr = name, [], input_bgr
        self.patch_grid = 1
        if isinstance(ops, dict):
            unknown = sorted(set(ops) - {'ops', 'patch_grid'})
            if unknown or 'ops' not in ops:
                raise KeyError(f'gpu_augment["{name}"]: a dict takes ops '
                               f'and patch_grid, got {sorted(ops)}')
            self.patch_grid = int(ops.get('patch_grid', 1))
            ops = ops['ops']
            if any(c.get('type') in ('RandomFlip', 'RandomCutoutInBoxes')
                   for c in ops) and self.patch_grid > 1:
                raise ValueError(f'gpu_augment["{name}"]: patch mode takes '
                                 'pixel ops only (no RandomFlip / cutout)')
        for i, cfg in enumerate(ops):
            cfg = dict(cfg)
            kind = cfg.pop('type', None)
            if kind not in OPS:
                raise KeyError(f'gpu_augment["{name}"][{i}]: unknown op '
                               f'{kind!r}; batched ops: {sorted(OPS)}')
            if kind in ('RandomGrayscale', 'RandomCutoutInBoxes'):
                cfg['input_bgr'] = input_bgr
            try:
                self.ops.append(OPS[kind](**cfg))
            except (TypeError, ValueError) as err:
                raise type(err)(f'gpu_augment["{name}"][{i}]: {err}') \
                    from err

    def draw(self, num: int, generator: torch.Generator) -> List[Params]:
        """Parameters of every op for ``num`` samples (CPU tensors)."""
        return [op.draw(num, generator) for op in self.ops]

    def apply(self, img: Tensor, params: List[Params]) -> Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> augmented, same shape (ops
        without boxes; :meth:`__call__` runs all ops)."""
        for op, p in zip(self.ops, params):
            img = op.apply(img, p)
        return img

    def __call__(self, batch: Tensor, samples: Optional[list],
                 generator: torch.Generator, to_rgb: bool = False) -> Tensor:
        """Augment a stacked view batch in the pipeline's format.

        Args:
            batch (Tensor): (N, 3, H, W) uint8 / float images in [0, 255],
                channel order as decoded.
            samples (list, optional): The view's data samples; boxes and
                homographies of flipped samples are moved.
            generator (torch.Generator): CPU generator for the draws.
            to_rgb (bool): Return RGB (saves flipping BGR input back when
                the caller would convert it next). Defaults to False.

        Returns:
            Tensor: (N, 3, H, W) float in [0, 255], the input's channel
            order (RGB with ``to_rgb``).
        """
        src = batch.flip(1) if self.input_bgr else batch  # RGB
        img = src * (1 / 255)  # float in [0, 1], one pass
        if self.patch_grid > 1:
            return self._patches(img, generator, to_rgb)
        params = self.draw(batch.size(0), generator)
        for op, p in zip(self.ops, params):
            if getattr(op, 'needs_boxes', False):  # the current boxes
                img = op.apply_boxes(img, samples, generator, self.name)
            else:
                img = op.apply(img, p)
            if isinstance(op, BatchedHorizontalFlip):
                op.move_samples(samples, p['flip'], batch.size(-1))
        if self.input_bgr and not to_rgb:
            img = img.flip(1)
        return img.mul_(255) if img is not src else img * 255

    def _patches(self, img: Tensor, generator: torch.Generator,
                 to_rgb: bool) -> Tensor:
        """Patch mode: every patch of every tile is one sample."""
        num, ch, height, width = img.shape
        grid = self.patch_grid
        if height % grid or width % grid:
            raise ValueError(f'gpu_augment["{self.name}"]: tile {height}x'
                             f'{width} is not a {grid}x{grid} grid')
        ph, pw = height // grid, width // grid
        patches = img.view(num, ch, grid, ph, grid, pw).permute(
            0, 2, 4, 1, 3, 5).reshape(-1, ch, ph, pw)  # (N*G*G, C, ph, pw)
        patches = self.apply(patches, self.draw(patches.size(0), generator))
        img = patches.view(num, grid, grid, ch, ph, pw).permute(
            0, 3, 1, 4, 2, 5).reshape(num, ch, height, width)  # tiles
        if self.input_bgr and not to_rgb:
            img = img.flip(1)
        return img * 255
