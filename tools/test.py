# Copyright (c) mmselfdet contributors. All rights reserved.
"""Evaluate a downstream checkpoint with the config's test evaluator.

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] \
        [--cfg-options k=v ...] [--launcher ...]
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save evaluation logs')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value (xxx=yyy format)')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint "{args.checkpoint}" not found')
    import mmselfdet  # noqa: F401  (resolves `mmselfdet::` config bases)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.load_from = args.checkpoint
    from mmselfdet.engine.dist import prepare_launch, run_launched
    prepare_launch(cfg, args.config, args.work_dir, args.launcher)

    # the Runner is dropped and the process group destroyed (after a
    # barrier when the run succeeded) before the interpreter shuts down;
    # also when the run raised
    run_launched(lambda: Runner.from_cfg(cfg), 'test')


if __name__ == '__main__':
    main()
