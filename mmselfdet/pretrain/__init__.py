# Copyright (c) mmselfdet contributors. All rights reserved.
"""Pretrain a method on your own images in one command.

Usage::

    python tools/pretrain.py METHOD (--images DIR | --ann-file FILE
        [--images ROOT]) --work-dir W [--gpus N | --launcher slurm
        --partition P --gpus N] [--batch-size B] [--epochs E | --iters T]
        [--backbone CKPT] [--downstream-config CFG] [--dry-run]
        [--cfg-options k=v ...]

Stages (each printed with its wall time):

1. **images**: list the folder (recursive) / COCO json / list file, stop on
   an empty folder or on listed files that do not exist, decode every image
   as training does (``LoadImageRobust``) and write the readable ones to
   ``W/data/images.json``; unreadable ones are counted and listed in
   ``W/data/bad_images.tsv`` (path, reason) and left out.
2. **config**: the method's paper config (:data:`METHODS`) rewritten for
   these images, written to ``W/pretrain_<method>.py`` (keep and edit it):
   data paths; an iteration budget derived from the image count (see
   :func:`derive_budget`), the paper's schedule shape stretched to it; the
   lr rule (the config's lr is for the batch its name declares; another
   total batch sets ``auto_scale_lr.enable=True`` and mmengine scales it
   linearly); then ``--cfg-options``.
3. **prepare** (resumable, skipped when done): selective search
   (``tools/generate_proposals.py``, ``--workers`` processes) for SoCo and
   object-aware crops; stages A-B (``tools/detr_pretrain/``) for SimDETR.
4. **train**: ``tools/train.py`` (1 process), ``tools/dist_train.sh``
   (``--gpus N``, torchrun) or ``tools/slurm_train.sh`` (``--launcher
   slurm``). ``--resume`` continues from the work dir's latest checkpoint.
5. **export**: the method's transfer set in mmdet names, checked against the
   downstream detector config; prints the ``load_from`` line for it.

``--dry-run`` runs stages 1-2 and prints the commands of 3-5.

Parts: :mod:`.common` (the methods, a view of :mod:`mmselfdet.methods`),
:mod:`.images` (stage 1), :mod:`.derive` (stage 2), :mod:`.steps` (stages
3-5), :mod:`.cli` (arguments and the run).
"""
from mmselfdet.methods import COCO_TRAIN, IMAGENET_1K
from .cli import DESCRIPTION, Stage, main, parse_args
from .common import METHODS, REPO, InputError, Method
from .derive import (CAP_FACTOR, MIN_ITERS, derive_budget, derive_config,
                     find_dataset, stretch_schedule, write_config)
from .images import check_image, check_images, list_input
from .steps import (export, latest_checkpoint, launch_command, preparation,
                    run_step, show, train)

__all__ = [
    'DESCRIPTION', 'Stage', 'main', 'parse_args', 'METHODS', 'REPO',
    'InputError', 'Method', 'CAP_FACTOR', 'COCO_TRAIN', 'IMAGENET_1K',
    'MIN_ITERS', 'derive_budget', 'derive_config', 'find_dataset',
    'stretch_schedule', 'write_config', 'check_image', 'check_images',
    'list_input', 'export', 'latest_checkpoint', 'launch_command',
    'preparation', 'run_step', 'show', 'train'
]
