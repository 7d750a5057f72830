# Copyright (c) mmselfdet contributors. All rights reserved.
"""The command line of own-data pretraining (``tools/pretrain.py``): the
arguments, the stage printing and the run of the five stages (see
:mod:`mmselfdet.pretrain`)."""
import argparse
import json
import os
import os.path as osp
import shlex
import time
from typing import List, Optional

from .common import METHODS, REPO
from .derive import derive_config, write_config
from .images import check_images, list_input
from .steps import export, launch_command, preparation, run_step, show, train

DESCRIPTION = 'Pretrain a method on your own images in one command.'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line, checked (see ``--help``)."""
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description=DESCRIPTION, epilog='See docs/own_data.md.')
    p.add_argument('method', choices=sorted(METHODS))
    p.add_argument('--images', help='image folder (scanned recursively), or '
                   'with --ann-file the folder its file names are relative '
                   'to (default: the file\'s folder)')
    p.add_argument('--ann-file', help='COCO json (its "images") or a list '
                   'file (.txt, one name per line)')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--config', help='start from this config instead of the '
                   "method's paper config")
    p.add_argument('--gpus', type=int, default=None,
                   help='processes: torchrun on this machine, or SLURM tasks')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                   default=None, help='default: none (1 process), pytorch '
                   'with --gpus > 1')
    p.add_argument('--partition', help='SLURM partition')
    p.add_argument('--job-name', help='SLURM job name')
    p.add_argument('--gpus-per-node', type=int, default=8)
    p.add_argument('--batch-size', type=int, help='images per process')
    p.add_argument('--epochs', type=float, help='override the derived budget')
    p.add_argument('--iters', type=int, help='override the derived budget')
    p.add_argument('--workers', type=int, default=None,
                   help='processes for the image check and the preparation, '
                   'dataloader workers (default: min(8, CPUs); config)')
    p.add_argument('--check-images', choices=['decode', 'header', 'none'],
                   default='decode', help='how every image is checked once')
    p.add_argument('--backbone', help='simdetr, simdetr-detr: '
                   'self-supervised backbone checkpoint (e.g. the export of '
                   'a mocov2 run)')
    p.add_argument('--prepare-args', default='',
                   help='extra arguments of the preparation command (stage A '
                   'for simdetr and simdetr-detr), e.g. "--max-side 256"')
    p.add_argument('--downstream-config', help='detector config to export '
                   "for (default: the method's Mask R-CNN R50-FPN)")
    p.add_argument('--export-parts', nargs='+', help='detector prefixes to '
                   'export, e.g. backbone. (default: the whole transfer set)')
    p.add_argument('--resume', action='store_true',
                   help='continue training from the latest checkpoint in W')
    p.add_argument('--dry-run', action='store_true', help='check the images, '
                   'write the config, print the commands; run nothing')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys (applied last)')
    args = p.parse_args(argv)
    if not args.images and not args.ann_file:
        p.error('give --images DIR or --ann-file FILE')
    if args.epochs is not None and args.iters is not None:
        p.error('give --epochs or --iters, not both')
    if args.launcher is None:
        args.launcher = 'pytorch' if (args.gpus or 1) > 1 else 'none'
    if args.launcher == 'none' and (args.gpus or 1) > 1:
        p.error('--gpus N > 1 runs N processes: use --launcher pytorch '
                '(the default then) or slurm')
    if args.launcher == 'slurm' and not args.partition:
        p.error('--launcher slurm needs --partition')
    args.gpus = args.gpus or 1
    if METHODS[args.method].needs_backbone and not args.backbone:
        p.error(f'{args.method} needs --backbone CKPT, a self-supervised '
                'backbone (e.g. W/exported.pth of "tools/pretrain.py mocov2 '
                '...")')
    if args.backbone and not args.dry_run and not osp.isfile(args.backbone):
        p.error(f'--backbone "{args.backbone}" does not exist')
    return args


class Stage:
    """Print a numbered stage header and, at the end, its wall time."""
    count = 0

    def __init__(self, title: str):
        Stage.count += 1
        print(f'\n==> [{Stage.count}] {title}', flush=True)
        self.t0 = time.time()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f'    done in {time.time() - self.t0:.1f} s', flush=True)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the stages (see :mod:`mmselfdet.pretrain`); returns the summary
    that is also written to ``W/pretrain_summary.json``."""
    args = parse_args(argv)
    method = METHODS[args.method]
    work = osp.abspath(args.work_dir)
    data_dir = osp.join(work, 'data')
    workers = args.workers if args.workers is not None else min(
        8, os.cpu_count() or 1)
    Stage.count = 0
    with Stage(f'images ({args.check_images} check)'):
        root, entries = list_input(args.images, args.ann_file)
        images_json, good, num_bad = check_images(
            root, entries, args.check_images, max(1, workers), data_dir)
    with Stage(f'config: {args.config or method.config}'):
        import torch
        cfg, why, prep = derive_config(args, method, root, images_json,
                                       len(good), data_dir,
                                       torch.cuda.is_available())
        cfg_path = osp.join(work, f'pretrain_{args.method}.py')
        train_cmd, env = launch_command(args, cfg_path, work)
        for line in why:
            print('    ' + line)
        write_config(cfg, cfg_path, [
            f'Derived by tools/pretrain.py from {args.config or method.config}'
            f' for {len(good)} images under {root}:'] + why +
            ['Run it again with:', show(train_cmd, env)])
        print(f'    wrote {cfg_path} (keep it, edit it, rerun it)')
    steps = preparation(args, method, prep, root, images_json,
                        max(1, workers))
    downstream = osp.abspath(args.downstream_config or
                             osp.join(REPO, method.downstream))
    exported = osp.join(work, 'exported.pth')
    summary = dict(method=args.method, paper_config=method.config,
                   config=cfg_path, images=len(good), unreadable=num_bad,
                   images_json=images_json, iters=cfg.train_cfg.max_iters,
                   batch_size=cfg.train_dataloader.batch_size,
                   world_size=args.gpus,
                   auto_scale_lr=dict(cfg.auto_scale_lr),
                   prepare=[shlex.join(c) for _, c, _ in steps],
                   train=show(train_cmd, env), downstream_config=downstream,
                   exported=exported, dry_run=args.dry_run)
    if args.dry_run:
        print('\n==> dry run: nothing else is run. The commands would be:')
        for title, cmd, _ in steps:
            print(f'    # {title}\n    {shlex.join(cmd)}')
        print(f'    # train\n    {summary["train"]}\n    # export\n    '
              f'python tools/export_checkpoint.py CKPT {exported} '
              f'--downstream-config {downstream}')
    else:
        for title, cmd, out in steps:
            with Stage(title):
                run_step(cmd, out, images_json)
        with Stage(f'train ({args.launcher}, {args.gpus} process(es))'):
            print('    ' + summary['train'], flush=True)
            train(train_cmd, env)
        with Stage(f'export for {osp.relpath(downstream, REPO)}'):
            ckpt, rep = export(work, exported, downstream, args.export_parts)
        summary.update(checkpoint=ckpt, matched=len(rep['matched']),
                       load_from=exported)
        print(f'\nFine-tune a detector from it: in {downstream} set\n'
              f"    load_from = '{exported}'\nor run\n    python tools/"
              f'train.py {downstream} --cfg-options load_from={exported}')
    with open(osp.join(work, 'pretrain_summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary

