# Copyright (c) mmselfdet contributors. All rights reserved.
"""Built-in toy dataset: deterministic synthetic multi-object scenes.

The scenes come from :mod:`.toy_render` (the renderer), the PNG preview
from :mod:`.toy_preview`; this module writes the dataset and re-exports
both. The generator draws cluttered scenes with 1-8 objects from five
categories that differ in both *shape* and *texture*:

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

import json
import os
import os.path as osp
from typing import Any, Union

import cv2
import numpy as np
from pycocotools import mask as mask_util
from tqdm import tqdm

from .toy_preview import _encode_png, draw_preview  # noqa: F401
from .toy_render import (_MIN_IMG_SIZE, TOY_CLASSES, TOY_METAINFO,
                         TOY_PALETTE, TOY_TEXTURES, render_toy_scene)

__all__ = [
    'TOY_CLASSES', 'TOY_TEXTURES', 'TOY_PALETTE', 'TOY_METAINFO', 'TOY_SPLITS',
    'TOY_VERSION', 'generate_toy_dataset', 'render_toy_scene', 'draw_preview'
]

#: Bump whenever the generated pixels or annotations change.
TOY_VERSION = '1.0'
#: Split names; the position is the split index used to seed the RNG.
TOY_SPLITS: tuple[str, ...] = ('unlabeled', 'train', 'val')

_GENERATOR = 'mmselfdet.datasets.toy'
_JPEG_QUALITY = 95

PathLike = Union[str, 'os.PathLike[str]']


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
