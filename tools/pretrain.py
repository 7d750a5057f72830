# Copyright (c) mmselfdet contributors. All rights reserved.
"""Pretrain a method on your own images in one command.

Usage::

    python tools/pretrain.py METHOD (--images DIR | --ann-file FILE
        [--images ROOT]) --work-dir W [--gpus N | --launcher slurm
        --partition P --gpus N] [--batch-size B] [--epochs E | --iters T]
        [--backbone CKPT] [--downstream-config CFG] [--dry-run]
        [--cfg-options k=v ...]

The stages and options: :mod:`mmselfdet.pretrain` and docs/own_data.md;
the methods: :mod:`mmselfdet.methods`.
"""
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmselfdet.pretrain import main  # noqa: E402

if __name__ == '__main__':
    main()
