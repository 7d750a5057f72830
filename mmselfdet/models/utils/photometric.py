# Copyright (c) mmselfdet contributors. All rights reserved.
"""Batched photometric augmentation on the device, one random draw per
image: colour jitter, grayscale, Gaussian blur and solarize of (N, 3, H, W)
RGB images in [0, 1] (the BYOL / SoCo view augmentation, for crops that are
cut on the device, e.g. the end-to-end SoCo extra crops).

The draw (:func:`draw_photometric`) and the application
(:func:`apply_photometric`) are separate, so a caller (or a test) can see
exactly which parameters an image got. :func:`cutout_in_boxes` is SoCo's
V2 / V3 cutout in box for boxes found inside the model (end-to-end SoCo).
"""
import contextlib
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, RGB order (torchvision's rgb_to_grayscale)
_LUMA = (0.299, 0.587, 0.114)
#: SoCo's V2 / V3 augmentation (official transform_post_2): ColorJitter
#: (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale p 0.2, blur p 0.1 with sigma in
#: [0.1, 2], solarize p 0.2 (threshold 128 of 255)
SOCO_V2_AUGS = dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
                    jitter_prob=0.8, gray_prob=0.2, blur_prob=0.1,
                    sigma=(0.1, 2.0), solarize_prob=0.2)


def draw_photometric(num: int, cfg: dict, device: torch.device,
                     generator: Optional[torch.Generator] = None
                     ) -> Dict[str, Tensor]:
    """Independent augmentation parameters for ``num`` images.

    Args:
        num (int): Number of images.
        cfg (dict): Strengths and probabilities (keys of
            :data:`SOCO_V2_AUGS`; missing keys take its values).
        device (torch.device): Device of the result.
        generator (torch.Generator, optional): For the draws.

    Returns:
        dict[str, Tensor]: (num,) tensors ``jitter`` (bool), ``brightness``,
        ``contrast``, ``saturation`` (factors), ``hue`` (turns), ``gray``
        (bool), ``sigma`` (0 = no blur) and ``solarize`` (bool).
    """
    cfg = dict(SOCO_V2_AUGS, **cfg)
    gen_device = generator.device if generator is not None else device

    def uniform(lo, hi):
        u = torch.rand(num, generator=generator, device=gen_device)
        return (lo + (hi - lo) * u).to(device)

    def coin(p):
        return uniform(0.0, 1.0) < p

    params = dict(jitter=coin(cfg['jitter_prob']))
    for key in ('brightness', 'contrast', 'saturation'):
        params[key] = uniform(max(0.0, 1 - cfg[key]), 1 + cfg[key])
    params['hue'] = uniform(-cfg['hue'], cfg['hue'])
    params['gray'] = coin(cfg['gray_prob'])
    blur = coin(cfg['blur_prob'])
    params['sigma'] = torch.where(blur, uniform(*cfg['sigma']),
                                  torch.zeros(num, device=device))
    params['solarize'] = coin(cfg['solarize_prob'])
    return params


_CONSTS: Dict[tuple, Tensor] = {}


def without_autocast(device: torch.device):
    """Autocast off for ``device``'s type, e.g. around the view
    augmentation inside an AMP forward (its blur would convolve in
    float16); a no-op where autocast is off or does not exist (``meta``)."""
    try:
        enabled = torch.is_autocast_enabled(device.type)
    except TypeError:  # torch < 2.4: one query per device type
        enabled = (torch.is_autocast_cpu_enabled() if device.type == 'cpu'
                   else device.type == 'cuda' and
                   torch.is_autocast_enabled())
    except RuntimeError:  # no autocast for this device type
        enabled = False
    return torch.autocast(device.type, enabled=False) if enabled else \
        contextlib.nullcontext()


def _const(values: tuple, device: torch.device,
           dtype: torch.dtype) -> Tensor:
    """``torch.tensor(values).view(1, -1, 1, 1)`` on ``device``, made once
    per device and dtype (not a host-to-device copy at every call)."""
    key = (values, device, dtype)
    if key not in _CONSTS:
        _CONSTS[key] = torch.tensor(values, dtype=dtype,
                                    device=device).view(1, -1, 1, 1)
    return _CONSTS[key]


def _gray(img: Tensor) -> Tensor:
    w = _const(_LUMA, img.device, img.dtype)
    return (img * w).sum(1, keepdim=True)  # (N, 1, H, W)


def _blend(img: Tensor, other, factor: Tensor) -> Tensor:
    """``factor * img + (1 - factor) * other`` per image, clamped to
    [0, 1] (one fused ``lerp``); ``other`` a tensor broadcastable to
    ``img`` or a number."""
    f = factor.view(-1, 1, 1, 1)
    if not torch.is_tensor(other):
        return (img * f).clamp_(0, 1) if other == 0 else \
            torch.lerp(torch.full_like(img, other), img, f).clamp_(0, 1)
    return torch.lerp(other.expand_as(img), img, f).clamp_(0, 1)


def _shift_hue(img: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue of (N, 3, H, W) RGB in [0, 1] by ``shift``
    turns (torchvision's / OpenCV's HSV: on ties the hue is taken from R,
    then G). Value and saturation are kept, so with ``delta = max - min``
    each channel is ``max - delta * mix(hue)``."""
    r, g, b = img.unbind(1)  # (N, H, W) each
    minc, maxc = torch.aminmax(img, dim=1)  # one kernel for both
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, 1.0)
    sixths = torch.where(r == maxc, (g - b) / safe,  # ties: R, then G
                         torch.where(g == maxc, (b - r) / safe + 2,
                                     (r - g) / safe + 4))
    hue6 = sixths + 6 * shift.view(-1, 1, 1)  # in (-4, 8): no wrap yet
    offset = _const((5., 3., 1.), img.device, img.dtype)
    k = offset + hue6[:, None]  # (N, 3, H, W), in (-3, 13)
    k = k - 6 * torch.floor(k * (1 / 6))  # mod 6 (cheaper than %)
    mix = torch.minimum(k, 4 - k).clamp_(0, 1)
    return (maxc[:, None] - delta[:, None] * mix).clamp(0, 1)


def _blur(img: Tensor, sigma: Tensor,
          radius: Optional[Tensor] = None) -> Tensor:
    """Separable Gaussian blur with a per-image sigma (0 = untouched).

    Args:
        img (Tensor): (N, C, H, W) images.
        sigma (Tensor): (N,) standard deviations in pixels; 0 leaves the
            image as it is. On the CPU (the batched op) the kernels are
            made there and nothing is read back from the device.
        radius (Tensor, optional): (N,) integer kernel radii, i.e. kernel
            size ``2 * radius + 1`` per image (taps farther out get weight
            0), on the CPU (their maximum sets the kernel's width: read
            from a device tensor it would wait for the device); e.g.
            OpenCV's ``ksize=(0, 0)`` choice for uint8 images,
            :func:`cv2_kernel_radius`. Default: ``ceil(3 * max sigma)`` for
            every image. Reflect-101 borders (OpenCV's default) either way;
            radii are capped at ``min(H, W) - 1``.

    Returns:
        Tensor: (N, C, H, W) blurred images.
    """
    num, ch, height, width = img.shape
    if radius is None:
        full = int(math.ceil(3 * float(sigma.max())))
        full = max(1, min(full, (min(height, width) - 1) // 2))
    else:  # read on the host: no device sync
        radius = radius.clamp(max=min(height, width) - 1)
        full = max(1, int(radius.max()))
    # the (N, K) kernels are made where sigma is (for the batched op the
    # CPU: one copy to the device, the same kernels on every device)
    x = torch.arange(-full, full + 1, device=sigma.device, dtype=img.dtype)
    s = sigma.clamp(min=1e-6).to(img.dtype).view(-1, 1)
    kernel = torch.exp(-0.5 * (x / s)**2)  # (N, K)
    if radius is not None:
        kernel = kernel * (x.abs()[None] <= radius.to(sigma.device).view(
            -1, 1)).to(kernel)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (N, K)
    kernel = kernel.repeat_interleave(ch, 0).to(
        img.device, non_blocking=True)  # (N * C, K)
    flat = img.reshape(1, num * ch, height, width)
    flat = F.pad(flat, (full, full, full, full), mode='reflect')
    flat = F.conv2d(flat, kernel.view(num * ch, 1, 1, -1), groups=num * ch)
    flat = F.conv2d(flat, kernel.view(num * ch, 1, -1, 1), groups=num * ch)
    out = flat.view(num, ch, height, width)
    off = sigma <= 0  # decided on the host when sigma is on the CPU
    if off.device.type != 'cpu' or bool(off.any()):
        return torch.where(off.to(img.device).view(-1, 1, 1, 1), img, out)
    return out


def cv2_kernel_radius(sigma: Tensor) -> Tensor:
    """The kernel radius ``cv2.GaussianBlur(img, (0, 0), sigma)`` uses on a
    uint8 image: ``ksize = round(6 * sigma + 1) | 1``, radius
    ``ksize // 2`` (OpenCV's ``createGaussianKernels``, 3 sigma per side
    for 8-bit images).

    Args:
        sigma (Tensor): (N,) sigmas.

    Returns:
        Tensor: (N,) int64 radii.
    """
    ksize = torch.round(sigma.double() * 6 + 1).long() | 1
    return ksize // 2


def apply_photometric(img: Tensor, params: Dict[str, Tensor]) -> Tensor:
    """Apply :func:`draw_photometric`'s parameters to (N, 3, H, W) RGB in
    [0, 1]: brightness, contrast, saturation, hue (in this fixed order,
    where torchvision's ColorJitter permutes them), then grayscale, blur,
    solarize. Images whose ``jitter`` is False skip the four colour ops.
    In float32 inside an AMP forward too (autocast off).
    """
    with without_autocast(img.device):
        return _apply_photometric(img, params)


def _apply_photometric(img: Tensor, params: Dict[str, Tensor]) -> Tensor:
    on = params['jitter']
    out = img
    out = torch.where(on.view(-1, 1, 1, 1),
                      _blend(out, torch.zeros_like(out),
                             params['brightness']), out)
    mean = _gray(out).mean((1, 2, 3), keepdim=True)
    out = torch.where(on.view(-1, 1, 1, 1),
                      _blend(out, mean, params['contrast']), out)
    out = torch.where(on.view(-1, 1, 1, 1),
                      _blend(out, _gray(out), params['saturation']), out)
    out = torch.where(on.view(-1, 1, 1, 1),
                      _shift_hue(out, params['hue']), out)
    out = torch.where(params['gray'].view(-1, 1, 1, 1),
                      _gray(out).expand_as(out), out)
    if bool((params['sigma'] > 0).any()):
        out = _blur(out, params['sigma'])
    solar = torch.where(out >= 128 / 255, 1 - out, out)
    return torch.where(params['solarize'].view(-1, 1, 1, 1), solar, out)


_CUTOUT_KEYS = ('prob', 'ratio', 'placement', 'fill')


def parse_cutout(cfg: Optional[dict]) -> Optional[dict]:
    """Check a :func:`cutout_in_boxes` config (``SoCo(cutout=...)``) and
    fill in its defaults; None stays None."""
    if cfg is None:
        return None
    unknown = sorted(set(cfg) - set(_CUTOUT_KEYS))
    if unknown:
        raise KeyError(f'SoCo: unknown cutout keys {unknown}; known: '
                       f'{list(_CUTOUT_KEYS)}')
    out = dict(prob=float(cfg.get('prob', 0.5)),
               ratio=tuple(float(r) for r in cfg.get('ratio', (0.1, 0.3))),
               placement=cfg.get('placement', 'inside'),
               fill=float(cfg.get('fill', 0.0)))
    lo, hi = out['ratio']
    if not 0 <= out['prob'] <= 1 or not 0 < lo <= hi <= 1 or \
            out['placement'] not in ('inside', 'center'):
        raise ValueError(f"SoCo: cutout needs prob in [0, 1], ratio (lo, hi) "
                         f"with 0 < lo <= hi <= 1 and placement 'inside' or "
                         f"'center', got {cfg}")
    return out


def cutout_in_boxes(img: Tensor,
                    boxes: Sequence[Tensor],
                    prob: float = 0.5,
                    ratio: Tuple[float, float] = (0.1, 0.3),
                    placement: str = 'inside',
                    fill: float = 0.0,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """SoCo's V2 / V3 "cutout in box" on a batch, on the device: the tensor
    twin of ``RandomCutoutInBoxes`` for boxes known only inside the model.

    Each box independently, with probability ``prob``: ``r`` uniform in
    ``ratio``, a square of side ``round(sqrt(r * box area))`` px is set to
    ``fill`` (0 in the normalised tensor is the mean colour, as the
    official code writes). ``'inside'``: the square lies inside the box's
    inner pixels (cut to them when the box is thinner), at a uniform
    position; ``'center'`` (official): centred on a uniform integer point
    of the box, clipped to the image only.

    Args:
        img (Tensor): (N, C, H, W) images (normalised).
        boxes (Sequence[Tensor]): Per image (n_i, 4) boxes in its pixels.
        prob, ratio, placement, fill: See above.
        generator (torch.Generator, optional): For the draws.

    Returns:
        Tensor: (N, C, H, W), the input where nothing is cut.
    """
    num, _, height, width = img.shape
    boxes = [b.reshape(-1, 4) for b in boxes]
    # the squares are worked out where the boxes are (the CPU, in the
    # preprocessor), then moved in one copy
    flat = torch.cat(boxes).to(torch.float32)  # (R, 4)
    if flat.numel() == 0:
        return img
    image = torch.arange(len(boxes)).repeat_interleave(
        torch.tensor([len(b) for b in boxes]))  # (R,) on the CPU
    gen_device = generator.device if generator is not None else flat.device
    u = torch.rand(flat.size(0), 4, generator=generator,
                   device=gen_device).to(flat)  # keep, ratio, x, y
    x1, y1, x2, y2 = flat.unbind(1)
    r = ratio[0] + (ratio[1] - ratio[0]) * u[:, 1]
    side = torch.round(torch.sqrt(r * (x2 - x1) * (y2 - y1))).clamp(min=1)
    if placement == 'inside':
        px0, py0 = x1.ceil(), y1.ceil()
        avail_w, avail_h = x2.floor() - px0, y2.floor() - py0
        sw, sh = torch.minimum(side, avail_w), torch.minimum(side, avail_h)
        x0 = px0 + torch.floor(u[:, 2] * (avail_w - sw + 1))
        y0 = py0 + torch.floor(u[:, 3] * (avail_h - sh + 1))
        xe, ye = x0 + sw, y0 + sh
        keep = (avail_w > 0) & (avail_h > 0)
    else:
        lo_x, lo_y = x1.floor(), y1.floor()
        cx = lo_x + torch.floor(u[:, 2] * (torch.maximum(x2.ceil(), lo_x + 1)
                                           - lo_x))
        cy = lo_y + torch.floor(u[:, 3] * (torch.maximum(y2.ceil(), lo_y + 1)
                                           - lo_y))
        x0, y0 = cx - torch.floor(side / 2), cy - torch.floor(side / 2)
        xe, ye = x0 + side, y0 + side
        keep = torch.ones_like(x0, dtype=torch.bool)
    keep &= u[:, 0] < prob
    geo = torch.stack([x0, y0, xe, ye, keep.to(flat.dtype)], 1)
    x0, y0, xe, ye, keep = geo.to(img.device, non_blocking=True).unbind(1)
    keep, image = keep > 0, image.to(img.device, non_blocking=True)
    xs = torch.arange(width, device=img.device, dtype=flat.dtype)
    ys = torch.arange(height, device=img.device, dtype=flat.dtype)
    in_x = (xs[None] >= x0[:, None]) & (xs[None] < xe[:, None])  # (R, W)
    in_y = (ys[None] >= y0[:, None]) & (ys[None] < ye[:, None])  # (R, H)
    cut = in_y[:, :, None] & in_x[:, None, :] & keep[:, None, None]
    mask = torch.zeros(num, height * width, device=img.device).index_add_(
        0, image, cut.flatten(1).float()) > 0  # (N, H * W)
    return img.masked_fill(mask.view(num, 1, height, width), fill)
