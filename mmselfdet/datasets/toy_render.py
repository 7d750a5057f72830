# Copyright (c) mmselfdet contributors. All rights reserved.
"""The toy dataset's scene renderer; :mod:`mmselfdet.datasets.toy` writes
the files and documents the scenes (five categories that differ in shape
and texture, colours shared by every category, cluttered backgrounds,
visible-part annotations).

Only numpy and OpenCV are needed (no torch).
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

__all__ = ['TOY_CLASSES', 'TOY_TEXTURES', 'TOY_PALETTE', 'TOY_METAINFO',
           'render_toy_scene']

TOY_CLASSES: tuple[str, ...] = ('disc', 'square', 'triangle', 'ring', 'cross')
#: Texture type of each class (same order as :data:`TOY_CLASSES`).
TOY_TEXTURES: tuple[str, ...] = ('solid', 'stripes', 'checkerboard', 'dots',
                                 'gradient')
#: RGB colour of each class for visualisation (mmdet ``metainfo`` palette).
TOY_PALETTE: list[tuple[int, int, int]] = [(230, 25, 75), (0, 130, 200),
                                           (255, 190, 0), (60, 180, 75),
                                           (170, 60, 210)]
TOY_METAINFO: dict[str, Any] = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)

_MIN_IMG_SIZE = 32
_MAX_OBJECTS = 8
_SIZE_RANGE = (0.10, 0.50)  # object size as a fraction of img_size
_MIN_VISIBLE_FRAC = 0.30  # drop instances less visible than this ...
_MIN_VISIBLE_AREA = 16  # ... or with fewer visible pixels than this
_PLACEMENT_TRIES = 10


# --------------------------------------------------------------------------
# scene rendering
# --------------------------------------------------------------------------
def _colour(rng: np.random.Generator,
            avoid: Sequence[np.ndarray] = (),
            min_dist: float = 0.0,
            tries: int = 20) -> np.ndarray:
    """Sample a colour at least ``min_dist`` away from the ``avoid`` colours.

    Args:
        rng: Random generator.
        avoid: Colours (float arrays of shape (3,)) to keep away from.
        min_dist: Minimum Euclidean distance to every colour in ``avoid``.
        tries: Give up after this many samples and keep the last one.

    Returns:
        np.ndarray: Float32 colour of shape (3,) in [0, 255].
    """
    c = rng.uniform(0.0, 255.0, 3)
    for _ in range(tries - 1):
        if all(np.linalg.norm(c - a) >= min_dist for a in avoid):
            break
        c = rng.uniform(0.0, 255.0, 3)
    return c.astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Render a cluttered background without any object.

    Args:
        rng: Random generator.
        size: Image side length in pixels.

    Returns:
        np.ndarray: uint8 image of shape (size, size, 3).
    """
    coords = np.arange(size, dtype=np.float32) / max(size - 1, 1)
    # smooth two-colour gradient
    c0, c1 = rng.uniform(30.0, 225.0, (2, 3)).astype(np.float32)
    phi = rng.uniform(0.0, 2.0 * np.pi)
    t = coords[None, :] * np.cos(phi) + coords[:, None] * np.sin(phi)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 + t[..., None] * (c1 - c0)
    # low-frequency colour field
    k = int(rng.integers(2, 5))
    field = rng.normal(0.0, 18.0, (k, k, 3)).astype(np.float32)
    img += cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)
    # low-contrast mid-frequency noise (grey)
    m = max(4, size // 8)
    coarse = rng.normal(0.0, rng.uniform(3.0, 8.0), (m, m)).astype(np.float32)
    img += cv2.resize(coarse, (size, size),
                      interpolation=cv2.INTER_LINEAR)[..., None]
    # faint blurry blobs
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        axes = (int(size * rng.uniform(0.04, 0.2)) + 1,
                int(size * rng.uniform(0.04, 0.2)) + 1)
        # work in a window around the blob (the blur spreads ~1 radius)
        rad = 2 * max(axes)
        x0, y0 = max(0, cx - rad), max(0, cy - rad)
        x1, y1 = min(size, cx + rad + 1), min(size, cy + rad + 1)
        layer = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(layer, (cx - x0, cy - y0), axes,
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), max(axes) / 3.0)
        alpha = (layer * rng.uniform(0.15, 0.35))[..., None]
        win = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = win + (_colour(rng) - win) * alpha
    img = np.clip(img, 0, 255).astype(np.uint8)
    # thin line segments, blended in at partial opacity
    n_lines = int(rng.integers(1, 6))
    overlay = img.copy()
    for _ in range(n_lines):
        p1 = rng.integers(0, size, 2)
        length = size * rng.uniform(0.1, 0.6)
        ang = rng.uniform(0.0, 2.0 * np.pi)
        p2 = p1 + length * np.array([np.cos(ang), np.sin(ang)])
        cv2.line(overlay, (int(p1[0]), int(p1[1])),
                 (int(round(p2[0])), int(round(p2[1]))),
                 tuple(float(v) for v in _colour(rng)), 1, cv2.LINE_AA)
    alpha = float(rng.uniform(0.35, 0.75))
    img = cv2.addWeighted(overlay, alpha, img, 1.0 - alpha, 0.0)
    return img


def _ellipse_pts(a: float, b: float, theta: float, n: int = 48) -> np.ndarray:
    """Polygon approximating an ellipse centred at the origin."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([x * c - y * s, x * s + y * c], axis=1)


def _rotate_pts(pts: np.ndarray, theta: float) -> np.ndarray:
    """Rotate (N, 2) points around the origin by ``theta`` radians."""
    c, s = np.cos(theta), np.sin(theta)
    return pts @ np.array([[c, s], [-s, c]])


def _sample_shape(label: int, size: float,
                  rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """Sample the geometry of one object centred at the origin.

    Args:
        label: Class index into :data:`TOY_CLASSES`.
        size: Nominal object size (diameter) in pixels.
        rng: Random generator.

    Returns:
        list[tuple[np.ndarray, int]]: Polygons ((N, 2) float xy points) with
        the value to fill them with, in drawing order. The first polygon is
        the outline; later ones may cut holes (value 0).
    """
    r = size / 2.0
    theta = rng.uniform(0.0, 2.0 * np.pi)
    name = TOY_CLASSES[label]
    if name == 'disc':
        return [(_ellipse_pts(r, r * rng.uniform(0.8, 1.0), theta), 1)]
    if name == 'square':
        h = r * rng.uniform(0.75, 0.85)
        sq = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
        return [(_rotate_pts(sq, theta), 1)]
    if name == 'triangle':
        ang = theta + np.arange(3) * 2.0 * np.pi / 3.0
        ang = ang + rng.uniform(-0.15, 0.15, 3)
        rad = r * rng.uniform(0.95, 1.1, 3)
        tri = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
        # the circumcentre is not the bbox centre: recentre the triangle
        tri -= (tri.max(0) + tri.min(0)) / 2.0
        return [(tri, 1)]
    if name == 'ring':
        ratio = rng.uniform(0.9, 1.0)
        inner = rng.uniform(0.45, 0.6)
        return [(_ellipse_pts(r, r * ratio, theta), 1),
                (_ellipse_pts(r * inner, r * ratio * inner, theta), 0)]
    if name == 'cross':
        w = r * rng.uniform(0.25, 0.35)
        cross = np.array([[-w, -r], [w, -r], [w, -w], [r, -w], [r, w], [w, w],
                          [w, r], [-w, r], [-w, w], [-r, w], [-r, -w],
                          [-w, -w]])
        return [(_rotate_pts(cross, theta), 1)]
    raise ValueError(f'unknown toy class index {label}')


def _rasterize(parts: list[tuple[np.ndarray, int]], cx: float, cy: float,
               size: int) -> np.ndarray:
    """Rasterise polygons translated to ``(cx, cy)`` into a boolean mask."""
    mask = np.zeros((size, size), np.uint8)
    for pts, value in parts:
        fixed = np.round((pts + (cx, cy)) * 16.0).astype(np.int32)
        cv2.fillPoly(mask, [fixed], int(value), cv2.LINE_8, 4)
    return mask.astype(bool)


def _texture(kind: str, xx: np.ndarray, yy: np.ndarray, size: float,
             ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render a texture on a grid of coordinates relative to the object.

    Args:
        kind: One of :data:`TOY_TEXTURES`.
        xx: x coordinates of shape (1, W), relative to the object centre.
        yy: y coordinates of shape (H, 1), relative to the object centre.
        size: Nominal object size in pixels (sets the texture scale).
        ref: Background colour near the object, kept away from.
        rng: Random generator.

    Returns:
        np.ndarray: Float32 texture of shape (H, W, 3).
    """
    h, w = yy.shape[0], xx.shape[1]
    phi = rng.uniform(0.0, np.pi)
    u = xx * np.cos(phi) + yy * np.sin(phi)
    v = -xx * np.sin(phi) + yy * np.cos(phi)
    if kind == 'solid':
        return np.broadcast_to(_colour(rng, [ref], 70.0), (h, w, 3))
    c1 = _colour(rng, [ref], 60.0)
    if kind == 'gradient':
        c2 = _colour(rng, [c1], 130.0)
        t = np.clip(u / size + 0.5, 0.0, 1.0)
        return c1 + t[..., None] * (c2 - c1)
    c2 = _colour(rng, [c1], 110.0)
    if kind == 'stripes':
        period = max(3.0, size * rng.uniform(0.14, 0.28))
        sel = np.mod(u / period + rng.uniform(), 1.0) < 0.5
    elif kind == 'checkerboard':
        cell = max(2.5, size * rng.uniform(0.12, 0.22))
        sel = (np.floor(u / cell + rng.uniform()) +
               np.floor(v / cell + rng.uniform())) % 2 == 0
    elif kind == 'dots':
        spacing = max(4.5, size * rng.uniform(0.17, 0.28))
        radius = spacing * rng.uniform(0.25, 0.35)
        du = np.mod(u / spacing + rng.uniform(), 1.0) - 0.5
        dv = np.mod(v / spacing + rng.uniform(), 1.0) - 0.5
        sel = (du * du + dv * dv) * spacing**2 < radius**2
    else:
        raise ValueError(f'unknown texture {kind!r}')
    return np.where(sel[..., None], c2, c1)


def render_toy_scene(
        rng: np.random.Generator,
        img_size: int = 128) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Render one toy scene in memory.

    Objects are placed one after another, each drawn over the earlier ones.
    A placement that would leave an earlier object less than 30% (or fewer
    than 16 pixels) visible is re-sampled (up to 10 tries, then the object is
    skipped), so occlusion happens but no drawn object is hidden so much that
    it would have to go unannotated. The scene is re-drawn until it holds at
    least one instance.

    Args:
        rng: Random generator; the whole scene is a function of its state.
        img_size: Side length of the square image in pixels.

    Returns:
        tuple[np.ndarray, list[dict]]: The BGR uint8 image of shape
        (img_size, img_size, 3) and one dict per instance, in drawing order,
        with ``label`` (0-based class index), ``mask`` (bool visible mask of
        shape (img_size, img_size)), ``area`` (visible pixels) and
        ``full_area`` (pixels before occlusion).
    """
    if img_size < _MIN_IMG_SIZE:
        raise ValueError(f'img_size must be >= {_MIN_IMG_SIZE}, got {img_size}')
    lo, hi = np.log(_SIZE_RANGE[0] * img_size), np.log(_SIZE_RANGE[1] * img_size)
    while True:
        bg = _background(rng, img_size)
        img = bg.astype(np.float32)
        objects: list[dict[str, Any]] = []
        for _ in range(int(rng.integers(1, _MAX_OBJECTS + 1))):
            label = int(rng.integers(len(TOY_CLASSES)))
            for _try in range(_PLACEMENT_TRIES):
                size = float(np.exp(rng.uniform(lo, hi)))
                parts = _sample_shape(label, size, rng)
                ext = np.abs(parts[0][0]).max(axis=0) + 1.0  # half extents
                cx = rng.uniform(ext[0], img_size - 1.0 - ext[0])
                cy = rng.uniform(ext[1], img_size - 1.0 - ext[1])
                full = _rasterize(parts, cx, cy, img_size)
                full_area = int(full.sum())
                if full_area < _MIN_VISIBLE_AREA:
                    continue
                if all(
                        int(np.count_nonzero(o['mask'] & ~full)) >= max(
                            _MIN_VISIBLE_FRAC * o['full_area'],
                            _MIN_VISIBLE_AREA) for o in objects):
                    break
            else:
                continue  # could not place this object: skip it
            for o in objects:
                o['mask'] &= ~full
            # texture only the object's window
            x0, y0 = (max(0, int(np.floor(c - e))) for c, e in zip((cx, cy), ext))
            x1, y1 = (min(img_size, int(np.ceil(c + e)) + 1)
                      for c, e in zip((cx, cy), ext))
            xx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
            yy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
            ref = bg[int(cy), int(cx)].astype(np.float32)
            tex = _texture(TOY_TEXTURES[label], xx, yy, size, ref, rng)
            win = full[y0:y1, x0:x1]
            img[y0:y1, x0:x1][win] = tex[win]
            objects.append(dict(label=label, mask=full, full_area=full_area))
        instances = []
        for o in objects:
            area = int(np.count_nonzero(o['mask']))
            if (area >= _MIN_VISIBLE_AREA
                    and area >= _MIN_VISIBLE_FRAC * o['full_area']):
                o['area'] = area
                instances.append(o)
        if instances:
            break
    # fine (uniform) sensor noise over everything, std 1.5-4 grey levels
    amp = np.float32(rng.uniform(1.5, 4.0) * np.sqrt(12.0))
    img += (rng.random(img.shape, dtype=np.float32) - np.float32(0.5)) * amp
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img, instances
