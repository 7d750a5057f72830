# Copyright (c) mmselfdet contributors. All rights reserved.
"""The images a proposal file describes: listing, names and sizes.

Decoding is :mod:`mmselfdet.utils.image` (shared with ``LoadImageRobust``)
and listing :mod:`mmselfdet.utils.image_list` (shared with
``UnlabeledDataset``); neither imports the dataset, so this package does
not import :mod:`mmselfdet.datasets.unlabeled` back.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from mmselfdet.utils.image import ImageLoadError, read_image_bgr, to_bgr_uint8
from mmselfdet.utils.image_list import list_image_infos, relative_image_name

__all__ = [
    'list_images', 'relative_image_name', 'image_size_from_header',
    'read_image_bgr', 'to_bgr_uint8'
]


def list_images(img_root: str, ann_file: str = '') -> List[Dict[str, Any]]:
    """List the images as :class:`UnlabeledDataset` does, sorted by id.

    Args:
        img_root: Image folder; names are relative to it.
        ann_file: ``''`` (scan ``img_root``), a list file or a COCO json.

    Returns:
        list[dict]: ``id``, ``file_name``, ``path``, ``width``/``height``
        (from a COCO json, else None). A list file naming an image twice
        gives it once (first id).
    """
    source, root, infos = list_image_infos(ann_file, img_root)
    images, seen = [], set()
    for info in infos:
        name = relative_image_name(info['img_path'], root)
        if source != 'coco':
            if name in seen:
                continue
            seen.add(name)
        images.append(dict(id=int(info['img_id']), file_name=name,
                           path=info['img_path'], width=info.get('width'),
                           height=info.get('height')))
    images.sort(key=lambda im: im['id'])
    return images


def image_size_from_header(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as ``LoadImageFromFile`` decodes it.

    Reads only the header (Pillow) and swaps the sides when the EXIF
    orientation is a 90-degree rotation; falls back to a full decode.

    Raises:
        ValueError: The image cannot be read; the message names the file.
    """
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
            try:
                orient = int(im.getexif().get(0x0112, 1))
            except Exception:  # noqa: BLE001  (broken EXIF: no rotation)
                orient = 1
        return (h, w) if orient in (5, 6, 7, 8) else (w, h)
    except Exception:  # noqa: BLE001
        try:
            img = read_image_bgr(path)
        except ImageLoadError as e:
            raise ValueError(f'{path}: cannot read image ({e})') from e
        return img.shape[1], img.shape[0]
