# Copyright (c) mmselfdet contributors. All rights reserved.
"""k-NN and linear probes of a frozen backbone on a COCO-style json.

Usage:
    # toy object crops (single-label top-1), a pretraining checkpoint
    python tools/benchmarks/probe.py work_dirs/mocov2_toy/iter_180.pth \
        --out work_dirs/probe/mocov2.json
    # the floor: mmdet's default random init (seeded)
    python tools/benchmarks/probe.py random --zero-init-residual true
    # whole images, multi-label mAP over classes
    python tools/benchmarks/probe.py exported.pth --mode images

CHECKPOINT is an exported mmdet checkpoint (``tools/export_checkpoint.py``,
``backbone.*`` keys), a raw pretraining checkpoint (its backbone is taken
through the exporter's transfer set) or ``random``. The backbone is frozen
in eval mode (BN statistics as stored). Prints progress and a table on
stderr, one JSON line on stdout, and writes the JSON to ``--out``.
See docs/benchmarks.md, "Probe (frozen features)".
"""
import argparse
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('checkpoint', help='checkpoint path or "random"')
    toy = osp.join(REPO, 'data/toy/annotations')
    p.add_argument('--train-ann', default=osp.join(toy, 'train.json'))
    p.add_argument('--val-ann', default=osp.join(toy, 'val.json'))
    p.add_argument('--train-img-prefix', help='default: ROOT/SPLIT/ for '
                   'ROOT/annotations/SPLIT.json')
    p.add_argument('--val-img-prefix')
    p.add_argument('--mode', choices=['crops', 'images'], default='crops',
                   help='box crops (top-1) or whole images (multi-label mAP)')
    p.add_argument('--crop-size', type=int, default=64,
                   help='side of the resized crops (crops mode)')
    p.add_argument('--img-size', type=int, default=128,
                   help='side of the resized images (images mode)')
    p.add_argument('--context', type=int, default=0,
                   help='pixels added around each box before cropping')
    p.add_argument('--stages', type=int, nargs='+', default=[5],
                   help='pooled stages to concatenate (2..5 = C2..C5)')
    p.add_argument('--depth', type=int, choices=[18, 34, 50, 101],
                   help='ResNet depth (default: the checkpoint\'s; 18 for '
                   'random)')
    p.add_argument('--zero-init-residual', choices=['true', 'false'],
                   default='true', help='random init only (mmdet default: '
                   'true)')
    p.add_argument('--k', type=int, default=20, help='k-NN neighbours')
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--linear-norm', choices=['standard', 'l2'],
                   default='standard')
    p.add_argument('--wd-grid', type=float, nargs='+',
                   help='weight decays tried on held-out train images')
    p.add_argument('--holdout', type=float, default=0.2,
                   help='fraction of train images held out for the choice')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--out', help='write the result JSON here')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmselfdet  # noqa: F401
    from mmselfdet.evaluation.probe import (DEFAULT_WD_GRID, ProbeError,
                                            format_table, run_probe)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        res = run_probe(
            args.checkpoint, args.train_ann, args.val_ann,
            args.train_img_prefix, args.val_img_prefix, mode=args.mode,
            size=args.crop_size if args.mode == 'crops' else args.img_size,
            context=args.context, stages=args.stages, depth=args.depth,
            zero_init_residual=args.zero_init_residual == 'true', k=args.k,
            temperature=args.temperature, linear_norm=args.linear_norm,
            wd_grid=args.wd_grid or DEFAULT_WD_GRID, holdout=args.holdout,
            seed=args.seed, batch_size=args.batch_size, log=log)
    except ProbeError as e:
        sys.exit(f'probe failed: {e}')
    log(format_table(res))
    line = json.dumps(res)
    print(line, flush=True)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(line + '\n')
    return res


if __name__ == '__main__':
    main()
