# Copyright (c) mmselfdet contributors. All rights reserved.
"""Built-in toy dataset: deterministic synthetic multi-object scenes.

The generator draws cluttered scenes with 1-8 objects from five categories
that differ in both *shape* and *texture*:

==========  ============  ==================================================
category    shape         texture (random colours / orientation / period)
==========  ============  ==================================================
disc        ellipse-ish   solid colour
square      rotated sq.   two-colour stripes
triangle    triangle      two-colour checkerboard
ring        annulus       dots on a base colour
cross       plus sign     linear two-colour gradient
==========  ============  ==================================================

Colours are drawn from the same distribution for every category, so colour
alone never identifies a class. Backgrounds mix a smooth colour gradient, a
low-frequency colour field, low-contrast noise, faint blobs and thin line
segments; none of those are objects. Later objects are drawn over earlier
ones; every annotation describes the *visible* part of its object.

Everything is written in COCO format::

    out_dir/
        meta.json                      # generator version, seed, parameters
        annotations/{unlabeled,train,val}.json
        {unlabeled,train,val}/000000.jpg ...

Each image has its own random stream,
``np.random.SeedSequence([seed, split_index, image_index])``, so the same
seed gives byte-identical files, and the first ``n`` images of a split do not
depend on how many images the split has. Annotations carry one extra,
harmless field, ``full_area``: the pixel count of the object before
occlusion (``area < full_area`` means the object is partly hidden).

Only numpy, OpenCV, pycocotools and tqdm are needed (no torch).
"""
from __future__ import annotations

import io
import json
import os
import os.path as osp
from typing import Any, Sequence, Union

import cv2
import numpy as np
from pycocotools import mask as mask_util
from tqdm import tqdm

__all__ = [
    'TOY_CLASSES', 'TOY_TEXTURES', 'TOY_PALETTE', 'TOY_METAINFO', 'TOY_SPLITS',
    'TOY_VERSION', 'generate_toy_dataset', 'render_toy_scene', 'draw_preview'
]

#: Bump whenever the generated pixels or annotations change.
TOY_VERSION = '1.0'
TOY_CLASSES: tuple[str, ...] = ('disc', 'square', 'triangle', 'ring', 'cross')
#: Texture type of each class (same order as :data:`TOY_CLASSES`).
TOY_TEXTURES: tuple[str, ...] = ('solid', 'stripes', 'checkerboard', 'dots',
                                 'gradient')
#: RGB colour of each class for visualisation (mmdet ``metainfo`` palette).
TOY_PALETTE: list[tuple[int, int, int]] = [(230, 25, 75), (0, 130, 200),
                                           (255, 190, 0), (60, 180, 75),
                                           (170, 60, 210)]
TOY_METAINFO: dict[str, Any] = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)
#: Split names; the position is the split index used to seed the RNG.
TOY_SPLITS: tuple[str, ...] = ('unlabeled', 'train', 'val')

_GENERATOR = 'mmselfdet.datasets.toy'
_MIN_IMG_SIZE = 32
_MAX_OBJECTS = 8
_SIZE_RANGE = (0.10, 0.50)  # object size as a fraction of img_size
_MIN_VISIBLE_FRAC = 0.30  # drop instances less visible than this ...
_MIN_VISIBLE_AREA = 16  # ... or with fewer visible pixels than this
_PLACEMENT_TRIES = 10
_JPEG_QUALITY = 95

PathLike = Union[str, 'os.PathLike[str]']


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


def _coco_annotation(inst: dict[str, Any], ann_id: int,
                     image_id: int) -> dict[str, Any]:
    """Convert an instance of :func:`render_toy_scene` to a COCO annotation."""
    mask = inst['mask']
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    x, y = int(cols[0]), int(rows[0])
    w, h = int(cols[-1]) - x + 1, int(rows[-1]) - y + 1
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=inst['label'] + 1,
        bbox=[x, y, w, h],
        area=int(inst['area']),
        iscrowd=0,
        segmentation=dict(
            size=[int(s) for s in rle['size']],
            counts=rle['counts'].decode('utf-8')),
        full_area=int(inst['full_area']))


# --------------------------------------------------------------------------
# dataset on disk
# --------------------------------------------------------------------------
def _layout(out_dir: str) -> dict[str, Any]:
    """Paths of every split of a toy dataset rooted at ``out_dir``."""
    result: dict[str, Any] = {
        split: dict(
            img_dir=osp.join(out_dir, split),
            ann_file=osp.join(out_dir, 'annotations', f'{split}.json'))
        for split in TOY_SPLITS
    }
    result['meta'] = osp.join(out_dir, 'meta.json')
    return result


def _image_name(index: int) -> str:
    return f'{index:06d}.jpg'


def _files_complete(paths: dict[str, Any], params: dict[str, int]) -> bool:
    """Whether every annotation file and image of ``params`` exists."""
    for split in TOY_SPLITS:
        if not osp.isfile(paths[split]['ann_file']):
            return False
        img_dir = paths[split]['img_dir']
        for i in range(params[f'num_{split}']):
            if not osp.isfile(osp.join(img_dir, _image_name(i))):
                return False
    return True


def _remove_generated(paths: dict[str, Any]) -> None:
    """Delete the files a previous generation wrote (and nothing else)."""
    if osp.isfile(paths['meta']):
        os.remove(paths['meta'])
    for split in TOY_SPLITS:
        if osp.isfile(paths[split]['ann_file']):
            os.remove(paths[split]['ann_file'])
        img_dir = paths[split]['img_dir']
        if not osp.isdir(img_dir):
            continue
        for name in os.listdir(img_dir):
            stem, ext = osp.splitext(name)
            if ext == '.jpg' and len(stem) == 6 and stem.isdigit():
                os.remove(osp.join(img_dir, name))


def _dump_json(obj: Any, path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, separators=(',', ':'))


def generate_toy_dataset(out_dir: PathLike,
                         seed: int = 0,
                         img_size: int = 128,
                         num_unlabeled: int = 1000,
                         num_train: int = 200,
                         num_val: int = 100,
                         overwrite: bool = False,
                         progress: bool = True) -> dict[str, Any]:
    """Generate the toy dataset in COCO format (or reuse an existing one).

    If ``out_dir/meta.json`` records the same generator version and
    parameters and every file is present, nothing is written ("generate if
    absent"). A dataset made with other parameters is only replaced when
    ``overwrite=True``; then the previously generated files (``meta.json``,
    the annotation files and ``NNNNNN.jpg`` images) are deleted first.

    Args:
        out_dir: Dataset root directory; created if needed.
        seed: Non-negative base seed. Same seed and parameters give
            byte-identical files.
        img_size: Side length of the square images in pixels (>= 32).
        num_unlabeled: Number of images in the ``unlabeled`` split (it is
            annotated too, for analysis; pretraining should not use labels).
        num_train: Number of images in the ``train`` split.
        num_val: Number of images in the ``val`` split.
        overwrite: Replace an existing toy dataset made with other parameters.
        progress: Show a tqdm progress bar.

    Returns:
        dict: ``{split: dict(img_dir=..., ann_file=...)}`` for ``unlabeled``,
        ``train`` and ``val``, plus ``'meta'``: the path of ``meta.json``.
        Paths are ``out_dir`` joined with relative parts.

    Raises:
        ValueError: On invalid parameters.
        FileExistsError: If ``out_dir`` holds a toy dataset made with other
            parameters (or another generator version) and ``overwrite`` is
            False.
    """
    params = dict(
        seed=int(seed),
        img_size=int(img_size),
        num_unlabeled=int(num_unlabeled),
        num_train=int(num_train),
        num_val=int(num_val))
    if params['seed'] < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    if params['img_size'] < _MIN_IMG_SIZE:
        raise ValueError(f'img_size must be >= {_MIN_IMG_SIZE}, got {img_size}')
    for split in TOY_SPLITS:
        if params[f'num_{split}'] < 0:
            raise ValueError(f'num_{split} must be non-negative')

    out_dir = os.fspath(out_dir)
    paths = _layout(out_dir)
    meta = dict(generator=_GENERATOR, version=TOY_VERSION, params=params)
    if osp.isfile(paths['meta']):
        with open(paths['meta'], encoding='utf-8') as f:
            old = json.load(f)
        old_key = {k: old.get(k) for k in ('generator', 'version', 'params')}
        if old_key == meta:
            if not overwrite and _files_complete(paths, params):
                return paths
        elif not overwrite:
            raise FileExistsError(
                f'{out_dir!r} already holds a toy dataset made with different '
                f'parameters: found {old_key}, requested {meta}. Pass '
                'overwrite=True (tools/make_toy_dataset.py: --overwrite) to '
                'regenerate it, or choose another directory.')
        _remove_generated(paths)

    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(TOY_CLASSES)
    ]
    total = sum(params[f'num_{s}'] for s in TOY_SPLITS)
    stats: dict[str, dict[str, int]] = {}
    with tqdm(total=total, disable=not progress, unit='img',
              desc='toy dataset') as pbar:
        for split_index, split in enumerate(TOY_SPLITS):
            pbar.set_postfix_str(split)
            img_dir = paths[split]['img_dir']
            os.makedirs(img_dir, exist_ok=True)
            images, annotations = [], []
            num_occluded = 0
            for i in range(params[f'num_{split}']):
                rng = np.random.default_rng(
                    np.random.SeedSequence([params['seed'], split_index, i]))
                img, instances = render_toy_scene(rng, params['img_size'])
                name = _image_name(i)
                if not cv2.imwrite(
                        osp.join(img_dir, name), img,
                    [int(cv2.IMWRITE_JPEG_QUALITY), _JPEG_QUALITY]):
                    raise OSError(f'could not write {osp.join(img_dir, name)}')
                image_id = i + 1
                images.append(
                    dict(id=image_id, file_name=name, width=params['img_size'],
                         height=params['img_size']))
                for inst in instances:
                    annotations.append(
                        _coco_annotation(inst, len(annotations) + 1, image_id))
                    num_occluded += int(inst['area'] < inst['full_area'])
                pbar.update(1)
            _dump_json(
                dict(
                    info=dict(
                        description=f'mmselfdet toy dataset ({split})',
                        version=TOY_VERSION),
                    licenses=[],
                    images=images,
                    annotations=annotations,
                    categories=categories), paths[split]['ann_file'])
            stats[split] = dict(
                num_images=len(images),
                num_annotations=len(annotations),
                num_occluded=num_occluded)
    # written last: its presence marks a complete generation
    _dump_json(
        dict(meta, classes=list(TOY_CLASSES),
             textures=dict(zip(TOY_CLASSES, TOY_TEXTURES)), stats=stats),
        paths['meta'])
    return paths


# --------------------------------------------------------------------------
# visualisation
# --------------------------------------------------------------------------
def _encode_png(img: np.ndarray, max_bytes: int) -> bytes:
    """Encode a BGR image as PNG, reducing colours until it fits ``max_bytes``.

    With Pillow (a dependency of mmcv) the image becomes an adaptive 256-colour
    (then 128, 64, 32) palette PNG with Floyd-Steinberg dithering; without
    Pillow the low bits of each channel are dropped instead. The smallest
    attempt is kept if none fits.
    """
    attempts: list[bytes] = []
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with mmcv
        for drop_bits in range(6):
            quant = img & np.uint8((0xFF << drop_bits) & 0xFF)
            ok, buf = cv2.imencode('.png', quant,
                                   [int(cv2.IMWRITE_PNG_COMPRESSION), 9])
            if not ok:
                raise OSError('PNG encoding failed')
            attempts.append(buf.tobytes())
            if len(attempts[-1]) <= max_bytes:
                return attempts[-1]
        return min(attempts, key=len)
    rgb = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
    for colours in (256, 128, 64, 32):
        palette = rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        pal = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        buf = io.BytesIO()
        pal.save(buf, format='PNG', optimize=True)
        attempts.append(buf.getvalue())
        if len(attempts[-1]) <= max_bytes:
            return attempts[-1]
    return min(attempts, key=len)


def draw_preview(out_png: PathLike,
                 data_root: PathLike,
                 split: str = 'train',
                 num: int = 16,
                 tile_size: int = 160,
                 max_bytes: int = 200_000) -> str:
    """Draw a grid of annotated images of a toy split into a PNG.

    Boxes are coloured by class (:data:`TOY_PALETTE`) and labelled with the
    class name; a legend strip is added at the bottom.

    Args:
        out_png: Output PNG path; parent directories are created.
        data_root: Root of a dataset made by :func:`generate_toy_dataset`.
        split: Split to show.
        num: Number of images (the first ``num`` of the split).
        tile_size: Side length of each tile in pixels.
        max_bytes: Size budget of the PNG: its colours are reduced (adaptive,
            dithered palette of 256 down to 32 colours) until it fits.

    Returns:
        str: The path of the written PNG.
    """
    data_root = os.fspath(data_root)
    with open(osp.join(data_root, 'annotations', f'{split}.json'),
              encoding='utf-8') as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    colours = {
        cid: tuple(int(v) for v in TOY_PALETTE[(cid - 1) % len(TOY_PALETTE)][::-1])
        for cid in names
    }
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    infos = coco['images'][:max(1, num)]
    ncols = int(np.ceil(np.sqrt(len(infos))))
    nrows = int(np.ceil(len(infos) / ncols))
    font = cv2.FONT_HERSHEY_SIMPLEX
    gap = 2
    font_scale = 0.3 * tile_size / 128
    tiles = []
    for info in infos:
        img = cv2.imread(osp.join(data_root, split, info['file_name']))
        scale = tile_size / max(info['width'], info['height'])
        tile = np.zeros((tile_size, tile_size, 3), np.uint8)
        h, w = int(round(info['height'] * scale)), int(round(info['width'] * scale))
        tile[:h, :w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        for ann in by_image.get(info['id'], []):
            x, y, bw, bh = (v * scale for v in ann['bbox'])
            colour = colours[ann['category_id']]
            p1 = (int(round(x)), int(round(y)))
            p2 = (int(round(x + bw)) - 1, int(round(y + bh)) - 1)
            cv2.rectangle(tile, p1, p2, colour, 1, cv2.LINE_8)
            label = names[ann['category_id']]
            (tw, th), base = cv2.getTextSize(label, font, font_scale, 1)
            ty = p1[1] - 2 if p1[1] - th - base >= 0 else p1[1] + th + 1
            cv2.rectangle(tile, (p1[0], ty - th - 1), (p1[0] + tw, ty + base - 1),
                          colour, -1)
            cv2.putText(tile, label, (p1[0], ty), font, font_scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
        tiles.append(tile)
    grid_w = ncols * tile_size + (ncols + 1) * gap
    legend_h = int(22 * tile_size / 160)
    grid_h = nrows * tile_size + (nrows + 1) * gap
    canvas = np.full((grid_h + legend_h, grid_w, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncols)
        y0, x0 = gap + r * (tile_size + gap), gap + c * (tile_size + gap)
        canvas[y0:y0 + tile_size, x0:x0 + tile_size] = tile
    x = gap + 4
    for cid, name in names.items():
        sw = legend_h // 2
        y_mid = grid_h + legend_h // 2
        cv2.rectangle(canvas, (x, y_mid - sw // 2), (x + sw, y_mid + sw // 2),
                      colours[cid], -1)
        label = f'{name} ({TOY_TEXTURES[cid - 1]})' if cid <= len(
            TOY_TEXTURES) else name
        (tw, th), _ = cv2.getTextSize(label, font, font_scale * 1.1, 1)
        cv2.putText(canvas, label, (x + sw + 4, y_mid + th // 2), font,
                    font_scale * 1.1, (0, 0, 0), 1, cv2.LINE_AA)
        x += sw + tw + 16

    out_png = os.fspath(out_png)
    if osp.dirname(out_png):
        os.makedirs(osp.dirname(out_png), exist_ok=True)
    data = _encode_png(canvas, max_bytes)
    with open(out_png, 'wb') as f:
        f.write(data)
    return out_png
