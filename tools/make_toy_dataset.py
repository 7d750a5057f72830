# Copyright (c) mmselfdet contributors. All rights reserved.
"""Generate the built-in toy dataset (synthetic multi-object scenes, COCO).

Run from the repository root::

    python tools/make_toy_dataset.py                      # -> data/toy
    python tools/make_toy_dataset.py --preview toy.png    # plus a preview grid

Nothing is rewritten when ``--out`` already holds a complete dataset made
with the same parameters; a dataset made with other parameters is only
replaced with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Optional, Sequence

# Prefer the checkout this script lives in over any installed mmselfdet.
_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from mmselfdet.datasets.toy import (  # noqa: E402
    TOY_SPLITS,
    draw_preview,
    generate_toy_dataset,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Generate the mmselfdet toy dataset (COCO format).')
    parser.add_argument(
        '--out', default='data/toy', help='output directory (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='base random seed')
    parser.add_argument(
        '--img-size', type=int, default=128, help='image side length in pixels')
    parser.add_argument(
        '--num-unlabeled', type=int, default=1000,
        help='images in the unlabeled split')
    parser.add_argument(
        '--num-train', type=int, default=200, help='images in the train split')
    parser.add_argument(
        '--num-val', type=int, default=100, help='images in the val split')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace an existing toy dataset made with other parameters')
    parser.add_argument(
        '--preview', metavar='PNG',
        help='also draw a grid of annotated train images into this PNG')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate the dataset (if needed), print where it is, draw a preview.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        int: The process exit status.
    """
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        paths = generate_toy_dataset(
            args.out,
            seed=args.seed,
            img_size=args.img_size,
            num_unlabeled=args.num_unlabeled,
            num_train=args.num_train,
            num_val=args.num_val,
            overwrite=args.overwrite,
            progress=True)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'toy dataset ready in {args.out} ({time.perf_counter() - start:.1f} s)')
    for split in TOY_SPLITS:
        print(f'  {split:<9}  images: {paths[split]["img_dir"]}  '
              f'annotations: {paths[split]["ann_file"]}')
    print(f'  meta       {paths["meta"]}')
    if args.preview:
        if args.num_train > 0:
            print(f'preview: {draw_preview(args.preview, args.out, "train")}')
        else:
            print('preview skipped: the train split is empty', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
