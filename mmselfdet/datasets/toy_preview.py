# Copyright (c) mmselfdet contributors. All rights reserved.
"""A PNG preview of a toy split (:func:`draw_preview`) and the size-capped
PNG encoder it shares with ``tools/browse_views.py``."""
from __future__ import annotations

import io
import json
import os
import os.path as osp
from typing import Any, Union

import cv2
import numpy as np

from .toy_render import TOY_PALETTE, TOY_TEXTURES

__all__ = ['draw_preview', 'encode_png']

PathLike = Union[str, 'os.PathLike[str]']


# --------------------------------------------------------------------------
# visualisation
# --------------------------------------------------------------------------
def encode_png(img: np.ndarray, max_bytes: int) -> bytes:
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
    data = encode_png(canvas, max_bytes)
    with open(out_png, 'wb') as f:
        f.write(data)
    return out_png


#: the former private name
_encode_png = encode_png
