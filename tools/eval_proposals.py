# Copyright (c) mmselfdet contributors. All rights reserved.
"""Average recall of a proposal file against COCO ground truth.

Run from the repository root::

    python tools/eval_proposals.py val_props.json \\
        data/toy/annotations/val.json --out ar.json

Prints AR@10/100/1000 (COCO-style: IoU 0.5:0.05:0.95, each ground-truth
box matched at most once, greedily by IoU; see
:mod:`mmselfdet.evaluation.proposal_recall`), the number of images and the
mean number of proposals per image, and saves everything as json with
``--out``. Images are matched by COCO image id (``--match id``, the default,
for files generated from the same COCO json) or by file name
(``--match file_name``, for files generated from a folder or list).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

# Prefer the checkout this script lives in over any installed mmselfdet.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from mmselfdet.datasets.proposals import load_proposal_file  # noqa: E402
from mmselfdet.evaluation.proposal_recall import average_recall  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    p = argparse.ArgumentParser(
        description='Average recall of proposals against COCO ground truth.')
    p.add_argument('proposals', help='proposal json (mmselfdet format)')
    p.add_argument('gt', help='COCO ground-truth json')
    p.add_argument('--out', help='save the results as json here')
    p.add_argument('--max-dets', type=int, nargs='+', default=[10, 100, 1000],
                   help='proposals per image (default: %(default)s)')
    p.add_argument('--match', choices=('id', 'file_name'), default='id',
                   help='how proposal images are matched to the ground truth')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Evaluate, print the table and save the json.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        int: The process exit status.
    """
    args = parse_args(argv)
    try:
        table, info = load_proposal_file(args.proposals)
        with open(args.gt, encoding='utf-8') as f:
            gt = json.load(f)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if 'images' not in gt:
        print(f'error: "{args.gt}" is not a COCO json (no "images")',
              file=sys.stderr)
        return 1
    if args.match == 'file_name':
        props = {im['id']: table[im['file_name']] for im in gt['images']
                 if im['file_name'] in table}
    else:
        props = {im['id']: table[im['id']] for im in gt['images']
                 if im['id'] in table}
    if not props:
        print(f'error: no image of "{args.gt}" is in "{args.proposals}" '
              f'(matched by {args.match}; try --match '
              f'{"file_name" if args.match == "id" else "id"})',
              file=sys.stderr)
        return 1
    res = average_recall(props, gt, max_dets=args.max_dets)
    res.update(proposal_file=args.proposals, gt_file=args.gt, match=args.match,
               proposal_info={k: info.get(k) for k in (
                   'algorithm', 'mode', 'parameters', 'filters')})
    heads = [f'AR@{k}' for k in args.max_dets] + ['images', 'gts',
                                                   'proposals/img']
    vals = [f'{res[f"AR@{k}"]:.4f}' for k in args.max_dets] + [
        str(res['num_images']), str(res['num_gts']),
        f'{res["mean_proposals"]:.1f}']
    widths = [max(len(h), len(v)) for h, v in zip(heads, vals)]
    print(' | '.join(h.rjust(w) for h, w in zip(heads, widths)))
    print('-|-'.join('-' * w for w in widths))
    print(' | '.join(v.rjust(w) for v, w in zip(vals, widths)))
    if res['images_without_proposals']:
        print(f'note: {res["images_without_proposals"]} ground-truth image(s) '
              'have no proposals (they count as misses)')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(res, f, indent=2, sort_keys=True)
            f.write('\n')
        print(f'saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
