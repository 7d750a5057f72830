# Copyright (c) mmselfdet contributors. All rights reserved.
"""Shared by the reliability tests: a tiny MoCo v2 config with the runtime
hooks of ``configs/_base_/default_runtime.py``, and log readers."""
import glob
import json
import os
import os.path as osp
import socket
import sys

from ..utils import REPO, tiny_moco_config


def reliability_config(img_dir: str, work_dir: str, max_iters: int = 8,
                       ckpt_interval: int = 4, num_workers: int = 0,
                       extra: str = '') -> str:
    """``tests/utils.tiny_moco_config`` with ``num_workers`` dataloader
    workers, our ``SafeCheckpointHook``, a cosine LR schedule, the fault
    hooks importable and ``extra`` (config text) appended; returns the
    config path."""
    path = tiny_moco_config(img_dir, work_dir, max_iters=max_iters,
                            ckpt_interval=ckpt_interval)
    with open(path) as f:
        text = f.read()
    for a, b in (("num_workers=0, persistent_workers=False",
                  f"num_workers={num_workers}, "
                  f"persistent_workers={num_workers > 0}"),
                 ("type='CheckpointHook'", "type='SafeCheckpointHook'"),
                 ("param_scheduler = []",
                  f"param_scheduler = [dict(type='CosineAnnealingLR', "
                  f"T_max={max_iters}, by_epoch=False, begin=0, "
                  f"end={max_iters})]")):
        assert a in text, a
        text = text.replace(a, b)
    text += """
custom_imports = dict(imports=['mmselfdet',
                               'tests.test_reliability.fault_hooks'],
                      allow_failed_imports=False)
""" + extra
    with open(path, 'w') as f:
        f.write(text)
    return path


def env() -> dict:
    """Environment of a training subprocess (repository importable)."""
    return dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                PYTHONPATH=REPO + os.pathsep + os.environ.get(
                    'PYTHONPATH', ''))


def scalars(work_dir: str) -> dict:
    """``{iteration: record}`` of every run's ``vis_data/scalars.json``
    under ``work_dir`` (later runs overwrite earlier iterations)."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['iter']] = rec
    return out


def free_port() -> int:
    """A free TCP port for a torchrun rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
