# Copyright (c) mmselfdet contributors. All rights reserved.
"""Selective-search proposals for an image set (SoCo's offline step).

Run from the repository root::

    # a folder (recursive), a list file or a COCO json, as UnlabeledDataset
    python tools/generate_proposals.py data/toy/unlabeled --out props.json
    python tools/generate_proposals.py data/toy/val \\
        --ann-file data/toy/annotations/val.json --out val_props.json \\
        --mode fast --max-side 500 --workers 2

    # shards (e.g. one per machine), then merge
    python tools/generate_proposals.py IMGS --out props.json --shard 0/4
    ...                                                     --shard 3/4
    python tools/generate_proposals.py --merge props.json \\
        props.shard-0-of-4.json props.shard-1-of-4.json ...

Output: one proposal json (format: :mod:`mmselfdet.datasets.proposals`).
Images are listed as :class:`mmselfdet.datasets.UnlabeledDataset` lists
them (:func:`mmselfdet.datasets.proposals.list_images`), sorted
by image id (COCO id, or position in the folder scan / list file), and
``--shard i/n`` (0-based ``i``) takes every n-th of them starting at ``i``
and writes ``OUT.shard-i-of-n.json``.

Resume: the images are processed in shards of ``--shard-size`` (the driver
:func:`mmselfdet.datasets.proposals.driver.run_sharded`); each finished
shard is written atomically to ``OUT.parts/`` (for a ``--shard`` run,
``OUT.shard-i-of-n.parts/``), a rerun with the same arguments skips the
shards found there, and the folder is deleted once the final json is
written. Parts made with other arguments are refused.

Bad images: files are decoded by the decoder ``LoadImageRobust`` uses
(:mod:`mmselfdet.utils.image`: ``cv2.IMREAD_ANYDEPTH |
cv2.IMREAD_ANYCOLOR``, EXIF orientation applied, as in training) and
converted to 8-bit BGR (gray, gray + alpha, BGRA, 16-bit, float). An image
that cannot be decoded is kept in ``images`` with no proposals, named in
``info['failed_images']`` and reported as a warning; it never stops the run.

Determinism: the same input and arguments give byte-identical files for any
``--workers``, ``--shard-size`` and sharding (then merged), and after a
resume. The ``info['created']`` stamp is the current UTC time unless the
environment variable ``SOURCE_DATE_EPOCH`` is set (the reproducible-builds
convention), so set it when comparing files byte for byte.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from fractions import Fraction
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Prefer the checkout this script lives in over any installed mmselfdet.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import cv2  # noqa: E402

from mmselfdet.datasets.proposals import (  # noqa: E402
    FILTER_KEYS,
    filter_proposals,
    list_images,
    read_image_bgr,
    round_coord,
    round_score,
)
from mmselfdet.datasets.proposals.driver import (  # noqa: E402
    merge_shard_files,
    parts_dir,
    remove_parts,
    run_sharded,
    shard_output,
    sum_stats,
    write_records,
)
from mmselfdet.models.proposers.selective_search import \
    SelectiveSearchProposer  # noqa: E402
from mmselfdet.version import __version__  # noqa: E402

#: Seed of the C ``rand()`` that OpenCV's selective search ranks with.
SS_SEED = 0
_SCORE_DOC = ('selective search has no scores: score = 1 / (1 + rank), rank = '
              '0-based position in its ranked output (before filtering)')


# --------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------
def _number(text: str) -> float:
    """A float that may be written as a fraction, e.g. ``1/3``."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as e:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from e


def _shard(text: str) -> Tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f'--shard must look like i/n, got {text!r}') from e
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(
            f'--shard i/n needs 0 <= i < n, got {text!r}')
    return i, n


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    p = argparse.ArgumentParser(
        description='Selective-search proposals for an image set, or merge '
        'shards with --merge.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Filters are off unless given; SoCo uses --min-size 32 '
        '--aspect 1/3 3 --area-ratio 0.3 0.8 (the dataset can also apply '
        'them at load time with proposal_filter=dict()).')
    p.add_argument('img_root', nargs='?',
                   help='image folder (the root image names are relative to)')
    p.add_argument('--ann-file', default='',
                   help='list file (.txt) or COCO json; default: scan img_root')
    p.add_argument('--out', help='output json')
    p.add_argument('--mode', choices=('fast', 'quality'), default='fast')
    p.add_argument('--max-side', type=int, default=500,
                   help='longer image side the search runs at '
                   '(default: %(default)s; 0 keeps the size)')
    p.add_argument('--max-boxes', type=int, default=None,
                   help='keep the first N boxes of the search per image')
    p.add_argument('--workers', type=int, default=1, help='processes')
    p.add_argument('--shard-size', type=int, default=256,
                   help='images per resumable shard (default: %(default)s)')
    p.add_argument('--shard', type=_shard, default=None, metavar='i/n',
                   help='process shard i (0-based) of n')
    p.add_argument('--merge', nargs='+', metavar=('OUT', 'SHARD'),
                   help='merge shard files into OUT and exit')
    g = p.add_argument_group('filters (applied at generation time)')
    g.add_argument('--min-size', type=_number, default=None,
                   help='drop boxes narrower or lower than this (pixels)')
    g.add_argument('--aspect', type=_number, nargs=2, default=None,
                   metavar=('LO', 'HI'), help='keep w/h in [LO, HI]')
    g.add_argument('--area-ratio', type=_number, nargs=2, default=None,
                   metavar=('LO', 'HI'),
                   help='keep sqrt(box area / image area) in [LO, HI]')
    g.add_argument('--topk', type=int, default=None,
                   help='keep the best K per image')
    g.add_argument('--nms', type=float, default=None, metavar='IOU',
                   help='non-maximum suppression IoU threshold')
    args = p.parse_args(argv)
    if args.merge:
        if len(args.merge) < 2:
            p.error('--merge needs OUT and at least one shard file')
    else:
        if not args.img_root or not args.out:
            p.error('img_root and --out are required (unless --merge)')
        if args.workers < 1 or args.shard_size < 1:
            p.error('--workers and --shard-size must be >= 1')
    return args


# --------------------------------------------------------------------------
# per image (runs in the workers)
# --------------------------------------------------------------------------
def _init_worker() -> None:
    cv2.setNumThreads(1)


def process_image(image: Dict[str, Any], cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Selective search + filters for one image, as a json-ready record.

    Args:
        image: An entry of :func:`list_images`.
        cfg: ``mode``, ``max_side``, ``max_boxes`` and ``filters`` (kwargs
            of :func:`filter_proposals`).

    Returns:
        dict: ``id``, ``file_name``, ``width``, ``height``, ``bboxes``
        (rounded x1y1x2y2 lists), ``scores``, ``stats`` and ``failed``
        (None or the reason).
    """
    rec = dict(id=image['id'], file_name=image['file_name'],
               width=int(image.get('width') or 0),
               height=int(image.get('height') or 0), bboxes=[], scores=[],
               stats={}, failed=None)
    try:
        img = read_image_bgr(image['path'])
    except ValueError as e:  # ImageLoadError: also an OSError
        rec['failed'] = str(e)
        return rec
    h, w = img.shape[:2]
    rec.update(width=int(w), height=int(h))
    proposer = SelectiveSearchProposer(cfg['mode'], cfg['max_side'],
                                       cfg['max_boxes'], seed=SS_SEED)
    try:
        boxes, scores = proposer.propose(img)
    except cv2.error as e:
        rec['failed'] = f'{image["path"]}: selective search failed ({e})'
        return rec
    boxes, scores, stats = filter_proposals(boxes, scores, (w, h),
                                            **cfg['filters'])
    rec['bboxes'] = [[round_coord(v) for v in b] for b in boxes.tolist()]
    rec['scores'] = [round_score(s) for s in scores.tolist()]
    rec['stats'] = stats
    return rec


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------
def _run_params(args: argparse.Namespace, num_listed: int) -> Dict[str, Any]:
    """Everything that decides the results (the provenance, minus stamps)."""
    filters = dict(
        min_size=args.min_size,
        aspect_range=list(args.aspect) if args.aspect else None,
        area_ratio_range=list(args.area_ratio) if args.area_ratio else None,
        topk=args.topk, nms_iou=args.nms)
    return dict(
        algorithm='selective_search',
        implementation='cv2.ximgproc.segmentation.'
        'createSelectiveSearchSegmentation',
        mode=args.mode,
        parameters=dict(max_side=args.max_side or None,
                        max_boxes=args.max_boxes, seed=SS_SEED,
                        decode='cv2.IMREAD_ANYDEPTH|cv2.IMREAD_ANYCOLOR'),
        filters=filters,
        score=_SCORE_DOC,
        opencv_version=cv2.__version__,
        mmselfdet_version=__version__,
        source=dict(img_root=args.img_root, ann_file=args.ann_file or None,
                    num_images=num_listed))


def _empty_stats() -> Dict[str, int]:
    return {k: 0 for k in ('input', 'clipped') + FILTER_KEYS + ('kept', )}


def _process_batch(batch: List[Dict[str, Any]],
                   cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [process_image(im, cfg) for im in batch]


def generate(args: argparse.Namespace) -> str:
    """Run selective search as the arguments say; returns the output path."""
    images = list_images(args.img_root, args.ann_file)
    params = _run_params(args, len(images))
    shard = None
    if args.shard is not None:
        i, n = args.shard
        images = images[i::n]
        shard = f'{i}/{n}'
    final = shard_output(args.out, args.shard)
    cfg = dict(mode=args.mode, max_side=args.max_side or None,
               max_boxes=args.max_boxes,
               filters=dict(min_size=args.min_size,
                            aspect_range=args.aspect,
                            area_ratio_range=args.area_ratio,
                            topk=args.topk, nms_iou=args.nms))
    prev_threads = cv2.getNumThreads()
    try:
        records = run_sharded(
            images, partial(_process_batch, cfg=cfg), parts_dir(final),
            header=dict(params, shard=shard, shard_size=args.shard_size),
            shard_size=args.shard_size, workers=args.workers,
            init_worker=_init_worker, desc='selective search')
    finally:
        cv2.setNumThreads(prev_threads)
    stats = _empty_stats()
    stats.update({k: stats.get(k, 0) + v
                  for k, v in sum_stats(records).items()})
    info = dict(params, filter_stats=stats)
    if shard is not None:
        info['shard'] = shard
    info = write_records(final, records, info)
    remove_parts(parts_dir(final))
    print(f'wrote {final}: {len(records)} images, {info["num_proposals"]} '
          f'proposals ({info["num_proposals"] / max(len(records), 1):.1f} '
          'per image)', file=sys.stderr)
    if info['failed_images']:
        print(f'warning: {len(info["failed_images"])} image(s) could not be '
              'processed and have no proposals (info.failed_images): '
              f'{info["failed_images"][:10]}', file=sys.stderr)
    return final


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate proposals or merge shards.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        int: The process exit status.
    """
    args = parse_args(argv)
    if args.merge:
        out, shard_files = args.merge[0], args.merge[1:]
        info = merge_shard_files(out, shard_files)
        print(f'merged {len(shard_files)} shards into {out}: '
              f'{info["num_images"]} images, {info["num_proposals"]} '
              'proposals', file=sys.stderr)
    else:
        generate(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
