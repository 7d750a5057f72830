# Copyright (c) mmselfdet contributors. All rights reserved.
"""Write the fixed low-data split files (docs/methods.md §6, §7).

Usage:
    # COCO: 1/2/5/10 % of the train images x seeds 0-4
    python tools/make_low_data_splits.py coco \
        data/coco/annotations/instances_train2017.json data/coco/low_data
    # VOC07+12 trainval: 10 % x seeds 0-4
    python tools/make_low_data_splits.py voc data/VOCdevkit \
        data/VOCdevkit/low_data
    # verify that the files on disk are exactly what the generator writes
    python tools/make_low_data_splits.py coco ANN OUT --check

Per (percent, seed) the COCO mode writes ``ids_{p}pct_seed{s}.json`` (the
image ids and where they came from) and ``{stem}_{p}pct_seed{s}.json``, the
source annotation file restricted to those images, which a config consumes
unchanged as its ``ann_file``. The VOC mode writes
``VOC2007_trainval_{p}pct_seed{s}.txt`` / ``VOC2012_...`` in ImageSets
format (``VOCDataset``'s ``ann_file``), sampled from the 07+12 union.

A split takes the first ``round(N * p / 100)`` (at least 1) images of one
seeded permutation of the sorted ids (``numpy.random.default_rng(seed)``),
so the same source gives byte-identical files and, per seed, the 1 % split
is inside the 2 % one, which is inside the 5 % one, and so on.
``manifest.json`` lists every file with its SHA-256; ``--check`` rebuilds
them in memory and fails on any difference (the files are generated, not
hand-edited).
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence

import numpy as np

COCO_PERCENTS = (1, 2, 5, 10)
VOC_PERCENTS = (10, )
SEEDS = (0, 1, 2, 3, 4)
VOC_YEARS = ('VOC2007', 'VOC2012')


def sample_ids(ids: Sequence, percent: float, seed: int) -> List:
    """The first ``round(N * percent / 100)`` (>= 1) ids of the seeded
    permutation of ``sorted(ids)``; nested across percents per seed."""
    ids = sorted(ids)
    if not ids:
        raise ValueError('no images to sample from')
    if not 0 < percent <= 100:
        raise ValueError(f'percent must be in (0, 100], got {percent}')
    k = max(1, int(round(len(ids) * percent / 100)))
    order = np.random.default_rng(seed).permutation(len(ids))
    return sorted(ids[i] for i in order[:k])


def _dump(obj) -> bytes:
    return (json.dumps(obj, indent=None, separators=(',', ':')) + '\n').encode()


def _sha(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _tag(percent) -> str:
    return f'{percent:g}pct'


def coco_splits(ann_file: str, percents=COCO_PERCENTS,
                seeds=SEEDS) -> Dict[str, bytes]:
    """File name -> content of every COCO split file."""
    with open(ann_file) as f:
        coco = json.load(f)
    for key in ('images', 'annotations'):
        if key not in coco:
            raise KeyError(f'{ann_file}: no "{key}" (not a COCO json)')
    stem = osp.splitext(osp.basename(ann_file))[0]
    source = dict(file=osp.basename(ann_file), sha256=_sha(ann_file),
                  num_images=len(coco['images']))
    files = {}
    for p in percents:
        for s in seeds:
            ids = sample_ids([im['id'] for im in coco['images']], p, s)
            keep = set(ids)
            name = f'{_tag(p)}_seed{s}'
            files[f'ids_{name}.json'] = _dump(
                dict(percent=p, seed=s, source=source, image_ids=ids))
            subset = {k: v for k, v in coco.items()
                      if k not in ('images', 'annotations')}
            subset['images'] = [im for im in coco['images']
                                if im['id'] in keep]
            subset['annotations'] = [a for a in coco['annotations']
                                     if a['image_id'] in keep]
            files[f'{stem}_{name}.json'] = _dump(subset)
    return files


def voc_splits(voc_root: str, percents=VOC_PERCENTS,
               seeds=SEEDS) -> Dict[str, bytes]:
    """File name -> content of every VOC07+12 trainval split file."""
    ids = []
    for year in VOC_YEARS:
        path = osp.join(voc_root, year, 'ImageSets', 'Main', 'trainval.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found (VOC07+12 layout: '
                                    'VOCdevkit/VOC2007, VOCdevkit/VOC2012)')
        with open(path) as f:
            ids += [(year, ln.strip()) for ln in f if ln.strip()]
    files = {}
    for p in percents:
        for s in seeds:
            chosen = sample_ids(ids, p, s)
            for year in VOC_YEARS:
                lines = [i for y, i in chosen if y == year]
                files[f'{year}_trainval_{_tag(p)}_seed{s}.txt'] = (
                    '\n'.join(lines) + '\n').encode() if lines else b''
    return files


def write(files: Dict[str, bytes], out_dir: str, source: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    for name, data in files.items():
        with open(osp.join(out_dir, name), 'wb') as f:
            f.write(data)
    manifest = dict(generator='tools/make_low_data_splits.py', source=source,
                    files={n: hashlib.sha256(d).hexdigest()
                           for n, d in sorted(files.items())})
    path = osp.join(out_dir, 'manifest.json')
    with open(path, 'w') as f:
        json.dump(manifest, f, indent=1)
    return path


def check(files: Dict[str, bytes], out_dir: str) -> List[str]:
    """Names of the files on disk that differ from what is generated."""
    bad = []
    for name, data in sorted(files.items()):
        path = osp.join(out_dir, name)
        if not osp.isfile(path) or open(path, 'rb').read() != data:
            bad.append(name)
    return bad


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('dataset', choices=['coco', 'voc'])
    p.add_argument('source', help='COCO annotation json, or the VOCdevkit '
                   'folder')
    p.add_argument('out_dir', help='where the split files go')
    p.add_argument('--percents', type=float, nargs='+',
                   help='default: 1 2 5 10 (COCO), 10 (VOC)')
    p.add_argument('--seeds', type=int, nargs='+', default=list(SEEDS))
    p.add_argument('--check', action='store_true',
                   help='compare the files in out_dir with a fresh '
                   'generation instead of writing')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.percents:  # 5 and 5.0 name (and write) the same split
        args.percents = [int(p) if float(p).is_integer() else p
                         for p in args.percents]
    if args.dataset == 'coco':
        files = coco_splits(args.source, args.percents or COCO_PERCENTS,
                            args.seeds)
    else:
        files = voc_splits(args.source, args.percents or VOC_PERCENTS,
                           args.seeds)
    if args.check:
        bad = check(files, args.out_dir)
        if bad:
            sys.exit(f'{len(bad)} of {len(files)} split files in '
                     f'{args.out_dir} differ from the generator: {bad[:5]}')
        print(f'all {len(files)} split files in {args.out_dir} match')
        return
    manifest = write(files, args.out_dir, osp.basename(args.source))
    print(f'wrote {len(files)} split files and {manifest}')


if __name__ == '__main__':
    main()
