# Copyright (c) mmselfdet contributors. All rights reserved.
"""Where the images of an unlabeled set come from: a folder, a list file or
a COCO json.

One listing for :class:`~mmselfdet.datasets.UnlabeledDataset` and the
proposal tools (:func:`mmselfdet.datasets.proposals.list_images`), so a
proposal file names the images the dataset later looks up.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def relative_image_name(img_path: str, root: str) -> str:
    """The name of an image in a proposal file: its path relative to
    ``root`` with ``/`` separators (the normalised path if ``root`` is
    empty)."""
    rel = osp.relpath(img_path, root) if root else osp.normpath(img_path)
    return rel.replace(os.sep, '/')


def image_info(path: str,
               img_id,
               height: Optional[int] = None,
               width: Optional[int] = None,
               instances: Optional[list] = None) -> dict:
    """One data info: ``img_path``, ``img_id``, ``instances`` and, when both
    are known, ``height`` / ``width``."""
    info = dict(img_path=path, img_id=img_id, instances=instances or [])
    if height is not None and width is not None:
        info.update(height=height, width=width)
    return info


def scan_folder(root: str,
                suffixes: Sequence[str] = IMG_SUFFIXES) -> List[dict]:
    """Every image under ``root`` (recursive, sorted, links followed); the
    id is the position in that order."""
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'UnlabeledDataset: image folder "{root}" does not exist')
    suffixes = tuple(s.lower() for s in suffixes)
    paths = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        paths += [osp.join(dirpath, f) for f in sorted(filenames)
                  if f.lower().endswith(suffixes)]
    if not paths:
        raise ValueError(f'UnlabeledDataset: image folder "{root}" holds no '
                         f'image with a suffix in {suffixes}')
    return [image_info(p, i) for i, p in enumerate(paths)]


def read_list_file(ann: str, root: str) -> List[dict]:
    """One image path per line, relative to ``root``; anything after the
    first whitespace (e.g. a class index) is ignored; the id is the line's
    position among the non-empty lines."""
    with open(ann) as f:
        lines = [ln.split()[0] for ln in f if ln.strip()]
    return [image_info(osp.join(root, p), i) for i, p in enumerate(lines)]


def read_coco_images(ann: str, root: str,
                     keep_boxes: bool = False) -> List[dict]:
    """The ``images`` of a COCO json (``file_name`` relative to ``root``);
    with ``keep_boxes`` its boxes of positive size become ``instances``
    (x1y1x2y2, label 0)."""
    with open(ann) as f:
        coco = json.load(f)
    if 'images' not in coco:
        raise KeyError(f'UnlabeledDataset: "{ann}" is not a COCO json '
                       '(no "images" key)')
    boxes: dict = {}
    if keep_boxes:
        for a in coco.get('annotations', []):
            x, y, w, h = a['bbox']
            if w > 0 and h > 0:
                boxes.setdefault(a['image_id'], []).append(
                    dict(bbox=[x, y, x + w, y + h], bbox_label=0,
                         ignore_flag=0))
    return [
        image_info(osp.join(root, im['file_name']), im['id'],
                   height=im.get('height'), width=im.get('width'),
                   instances=boxes.get(im['id'], []))
        for im in coco['images']
    ]


def list_image_infos(ann_file: str,
                     img_root: str,
                     suffixes: Sequence[str] = IMG_SUFFIXES,
                     keep_boxes: bool = False,
                     check_files: bool = True) -> Tuple[str, str, List[dict]]:
    """List an image set as :class:`~mmselfdet.datasets.UnlabeledDataset`
    reads it (paths already joined with its ``data_root``).

    Args:
        ann_file: ``''`` or a folder (scanned), a list file, or a ``.json``
            COCO file.
        img_root: The folder names are relative to (scanned when
            ``ann_file`` is empty).
        suffixes: Suffixes of a folder scan.
        keep_boxes: Keep COCO boxes as ``instances``.
        check_files: Raise naming the listed images that do not exist.

    Returns:
        tuple: ``(source, image_root, infos)``: ``source`` is ``'folder'``,
        ``'list'`` or ``'coco'``; names are relative to ``image_root``.

    Raises:
        FileNotFoundError: A missing ``ann_file``, folder or image.
        ValueError: No image found.
        KeyError: A json without ``images``.
    """
    ann = ann_file
    if not ann or osp.isdir(ann):
        source = 'folder'
        root = ann if ann and osp.isdir(ann) else img_root
        infos = scan_folder(root, suffixes)
    elif not osp.isfile(ann):
        raise FileNotFoundError(
            f'UnlabeledDataset: ann_file "{ann}" does not exist')
    elif ann.endswith('.json'):
        source, root = 'coco', img_root
        infos = read_coco_images(ann, root, keep_boxes)
    else:
        source, root = 'list', img_root
        infos = read_list_file(ann, root)
    if not infos:
        raise ValueError(
            f'UnlabeledDataset: no images found in "{ann or img_root}"')
    if check_files:
        missing = [i['img_path'] for i in infos
                   if not osp.isfile(i['img_path'])]
        if missing:
            raise FileNotFoundError(
                f'UnlabeledDataset: {len(missing)} of {len(infos)} images '
                f'listed in "{ann or img_root}" do not exist, e.g. '
                f'{missing[:3]}')
    return source, root, infos


__all__ = [
    'IMG_SUFFIXES', 'relative_image_name', 'image_info', 'scan_folder',
    'read_list_file', 'read_coco_images', 'list_image_infos'
]
