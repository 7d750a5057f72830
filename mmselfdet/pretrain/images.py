# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage 1 of own-data pretraining: list the user's images and check each
once as training decodes it."""
import hashlib
import json
import os
import os.path as osp
import sys
from multiprocessing import Pool
from typing import List, Optional, Tuple

from mmselfdet.utils.image_list import IMG_SUFFIXES, scan_folder
from .common import InputError


def list_input(images: Optional[str], ann_file: Optional[str]
               ) -> Tuple[str, List[dict]]:
    """The image root and the entries (``id``, ``file_name``, ``path``).

    Raises:
        InputError: A missing folder or file, no image, a json without
            ``images``, or listed files that do not exist (how many, which).
    """
    if not ann_file:
        root = osp.abspath(images)
        if not osp.isdir(root):
            raise InputError(f'image folder "{images}" does not exist')
        try:  # the folder scan of UnlabeledDataset
            names = [osp.relpath(i['img_path'], root)
                     for i in scan_folder(root, IMG_SUFFIXES)]
        except ValueError:
            raise InputError(
                f'image folder "{images}" holds no image (looked recursively '
                f'for {", ".join(IMG_SUFFIXES)})') from None
        entries = [dict(id=i, file_name=n) for i, n in enumerate(names)]
    else:
        if not osp.isfile(ann_file):
            raise InputError(f'--ann-file "{ann_file}" does not exist')
        root = osp.abspath(images or osp.dirname(ann_file))
        if ann_file.endswith('.json'):
            try:
                with open(ann_file) as f:
                    coco = json.load(f)
            except (OSError, ValueError) as e:
                raise InputError(f'cannot read "{ann_file}": {e}') from e
            if not isinstance(coco, dict) or not isinstance(
                    coco.get('images'), list):
                raise InputError(f'"{ann_file}" is not a COCO json (no '
                                 '"images" list)')
            try:
                entries = [dict(id=im['id'], file_name=im['file_name'])
                           for im in coco['images']]
            except (KeyError, TypeError) as e:
                raise InputError(f'"{ann_file}": an entry of "images" has '
                                 f'no {e} (COCO needs id and file_name)')
        else:
            with open(ann_file) as f:
                entries = [dict(id=i, file_name=ln.split()[0]) for i, ln in
                           enumerate(ln for ln in f if ln.strip())]
        if not entries:
            raise InputError(f'"{ann_file}" lists no image')
        if len({e['id'] for e in entries}) != len(entries):
            raise InputError(f'"{ann_file}": image ids are not unique')
    for e in entries:
        e['path'] = osp.join(root, e['file_name'])
    if ann_file:
        missing = [e['file_name'] for e in entries
                   if not osp.isfile(e['path'])]
        if missing:
            raise InputError(
                f'{len(missing)} of the {len(entries)} images listed in '
                f'"{ann_file}" do not exist under "{root}", e.g. '
                f'{missing[:5]} (--images sets the folder the names are '
                'relative to)')
    return root, entries


def check_image(job: Tuple[str, str]) -> Tuple[Optional[Tuple[int, int]],
                                                str]:
    """``((width, height), '')`` of a readable image, ``(None, reason)``
    otherwise; ``job`` is (path, mode)."""
    path, mode = job
    if mode == 'none':
        return (0, 0), ''
    try:
        if mode == 'header':
            from mmselfdet.datasets.proposals import image_size_from_header
            return image_size_from_header(path), ''
        from mmselfdet.datasets.transforms.loading import LoadImageRobust
        h, w = LoadImageRobust(on_error='raise')(dict(img_path=path))[
            'ori_shape']
        return (int(w), int(h)), ''
    except Exception as e:  # noqa: BLE001  (every failure is reported)
        return None, str(e).replace('\t', ' ').replace('\n', ' ')


def check_images(root: str, entries: List[dict], mode: str, workers: int,
                 data_dir: str) -> Tuple[str, List[dict], int]:
    """Check every image once, write ``images.json`` (the readable ones) and
    ``bad_images.tsv``; returns (json path, readable entries, bad count).
    A finished check of the same input is reused."""
    os.makedirs(data_dir, exist_ok=True)
    out = osp.join(data_dir, 'images.json')
    names = '\n'.join(str(e['file_name']) for e in entries).encode()
    sig = dict(root=root, mode=mode, num=len(entries),
               files=hashlib.md5(names).hexdigest())
    sig_file = osp.join(data_dir, 'check.json')
    if osp.isfile(out) and osp.isfile(sig_file):
        with open(sig_file) as f:
            if json.load(f) == sig:
                with open(out) as g:
                    good = json.load(g)['images']
                print(f'    {len(good)} images checked before ({out})')
                return out, good, len(entries) - len(good)
    import mmselfdet.datasets  # noqa: F401  (imported once, before forking)
    from tqdm import tqdm
    jobs = [(e['path'], mode) for e in entries]
    procs = workers if len(jobs) >= 64 else 1
    bar = dict(total=len(jobs), unit='img', desc='    check',
               disable=len(jobs) < 1000, file=sys.stdout)
    if procs > 1:
        with Pool(procs) as pool:
            results = list(tqdm(pool.imap(check_image, jobs, chunksize=16),
                                **bar))
    else:
        results = [check_image(j) for j in tqdm(jobs, **bar)]
    good, bad = [], []
    for e, (size, reason) in zip(entries, results):
        if size is None:
            bad.append((e['path'], reason))
        else:
            im = dict(id=e['id'], file_name=e['file_name'])
            if size != (0, 0):
                im.update(width=size[0], height=size[1])
            good.append(im)
    bad_file = osp.join(data_dir, 'bad_images.tsv')
    with open(bad_file, 'w') as f:
        f.writelines(f'{p}\t{r}\n' for p, r in bad)
    print(f'    {len(entries)} images under {root}: {len(good)} readable, '
          f'{len(bad)} unreadable ({mode} check, {procs} process(es))')
    if bad:
        print(f'    unreadable images are left out, listed in {bad_file}, '
              f'e.g. {[osp.basename(p) for p, _ in bad[:3]]}')
    if not good:
        raise InputError(f'none of the {len(entries)} images under "{root}" '
                         f'can be read (listed in {bad_file})')
    with open(out, 'w') as f:
        json.dump(dict(images=good, annotations=[],
                       categories=[dict(id=0, name='object')]), f)
    with open(sig_file, 'w') as f:
        json.dump(sig, f)
    return out, good, len(bad)

