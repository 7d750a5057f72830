# Copyright (c) mmselfdet contributors. All rights reserved.
"""The steps of the toy benchmark, each a resumable unit.

A unit runs the tools a user runs (``tools/train.py``,
``tools/export_checkpoint.py``, ``tools/benchmarks/probe.py``) in a
subprocess, with a config it derives and writes into its own folder (keep
it, edit it, rerun it by hand). It is done when its ``result.json`` exists:
a rerun skips it. Results are read from files, never from stdout.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from mmselfdet.utils.io import atomic_open

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESULT = 'result.json'


def read_result(folder: str) -> Optional[dict]:
    """The unit's result, or None when it has not finished."""
    path = osp.join(folder, RESULT)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_result(folder: str, result: dict) -> dict:
    """Write ``result.json`` atomically (a killed run leaves no half
    file, so the unit reruns)."""
    with atomic_open(osp.join(folder, RESULT), 'w') as f:
        json.dump(result, f, indent=1)
    return result


def run_tool(cmd: List[str], log: str, threads: int = 1) -> float:
    """Run ``python cmd...`` from the repository with its output in
    ``log``; raise with the log's tail on failure. Returns wall seconds;
    the child's CPU seconds (user + system, its own children included) are
    in :data:`LAST_CPU` under the log's path (a shared machine's load
    stretches wall time, CPU time much less)."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads),
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    t0 = time.time()
    with open(log, 'w') as f:
        # a wrapper shell reports the CPU time of the tool and its workers
        proc = subprocess.Popen(
            ['bash', '-c', 'TIMEFORMAT="%U %S"; time "$@" 2>&1',
             'run_tool', sys.executable] + cmd, cwd=REPO, env=env,
            stdout=f, stderr=subprocess.PIPE, text=True)
        _, times = proc.communicate()
    code = proc.returncode
    try:
        user, system = (float(x) for x in times.split()[-2:])
        LAST_CPU[log] = user + system
    except ValueError:
        LAST_CPU[log] = float('nan')
    if code != 0:
        with open(log) as f:
            tail = ''.join(f.readlines()[-25:])
        raise RuntimeError(f'failed ({code}): {" ".join(cmd)}\n--- last '
                           f'lines of {log} ---\n{tail}')
    return time.time() - t0


#: log path -> CPU seconds of its last :func:`run_tool`
LAST_CPU: Dict[str, float] = {}


def scalar_records(work_dir: str) -> List[dict]:
    """The records of mmengine's newest ``scalars.json`` under
    ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def loss_vs_chance(records: List[dict], tail: float = 0.1) -> dict:
    """Mean total loss over the last ``tail`` of the logged training
    records, and the chance level of its contrastive terms (the sum of the
    logged ``*contrast_chance``, each ln(1 + K) times its loss weight; 0
    when the method has none, e.g. BYOL)."""
    recs = [r for r in records if 'loss' in r]
    if not recs:
        raise ValueError('no training loss was logged')
    n = max(1, int(round(len(recs) * tail)))
    last = recs[-n:]
    loss = sum(r['loss'] for r in last) / n
    chance = sum(v for k, v in last[-1].items()
                 if k.endswith('contrast_chance'))
    return dict(loss=loss, chance=chance, loss_records=n,
                first_loss=recs[0]['loss'])


def dataset_cfg(cfg: Config) -> dict:
    """The innermost image dataset of ``cfg.train_dataloader`` (inside
    wrappers such as ``MultiImageMixDataset``)."""
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds


def scale_schedule(cfg: Config, iters: int) -> None:
    """Set ``max_iters`` and stretch every iteration-based scheduler that
    ended at the old ``max_iters`` (cosine ``T_max``, ``end``)."""
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    scheds = cfg.get('param_scheduler') or []
    if isinstance(scheds, dict):
        scheds = [scheds]
    for s in scheds:
        for key in ('end', 'T_max'):
            if s.get(key) == old:
                s[key] = iters
            elif s.get(key) is not None and s[key] > iters:
                s[key] = iters
    if cfg.get('default_hooks', {}).get('checkpoint') is not None:
        cfg.default_hooks.checkpoint.interval = iters


def pretrain_config(toy_cfg: str, out: str, data_root: str,
                    iters: Optional[int], fair_init: bool,
                    seed: int = 0) -> str:
    """Derive the pretraining config of one row and write it to ``out``."""
    cfg = Config.fromfile(osp.join(REPO, toy_cfg))
    dataset_cfg(cfg)['data_root'] = data_root.rstrip('/') + '/'
    if iters:
        scale_schedule(cfg, iters)
    if fair_init and 'backbone' in cfg.model:
        # the random row's init: mmdet's ResNet default
        cfg.model.backbone.zero_init_residual = True
    cfg.randomness = dict(seed=seed)
    os.makedirs(osp.dirname(out), exist_ok=True)
    cfg.dump(out)
    return out


def finetune_config(det_cfg: str, out: str, data_root: str, ann_file: str,
                    iters: int, seed: int,
                    load_from: Optional[str] = None,
                    val_ann: Optional[str] = None,
                    val_img: str = 'val/', train_img: str = 'train/',
                    extra: Sequence[str] = ()) -> str:
    """Derive one fine-tuning run (iteration-based: ``iters`` steps, lr
    drops at 2/3 and 11/12) and write it to ``out``; ``extra`` lines are
    appended (config overrides).

    The training images are drawn by mmengine's ``InfiniteSampler``: with
    an epoch-based sampler, mmengine's ``IterBasedTrainLoop`` sleeps 2 s at
    every epoch end, and the 10 % split (20 images, 3 batches of 8) ends an
    epoch every 3 steps -- a third of a fine-tuning's wall time was that
    sleep (docs/benchmarks.md)."""
    root = data_root.rstrip('/') + '/'
    val_ann = val_ann or root + 'annotations/val.json'
    warm = min(50, max(1, iters // 4))
    lines = [
        f'_base_ = {osp.join(REPO, det_cfg)!r}',
        f'data_root = {root!r}',
        'train_dataloader = dict(sampler=dict(type="InfiniteSampler", '
        'shuffle=True), dataset=dict(data_root=data_root, '
        f'ann_file={ann_file!r}, data_prefix=dict(img={train_img!r})))',
        'val_dataloader = dict(dataset=dict(data_root=data_root, '
        f'ann_file={val_ann!r}, data_prefix=dict(img={val_img!r})))',
        'test_dataloader = val_dataloader',
        f'val_evaluator = dict(ann_file={val_ann!r})',
        'test_evaluator = val_evaluator',
        f'train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", '
        f'max_iters={iters}, val_interval={iters})',
        'param_scheduler = [',
        f'    dict(type="LinearLR", start_factor=0.001, by_epoch=False, '
        f'begin=0, end={warm}),',
        f'    dict(type="MultiStepLR", by_epoch=False, begin=0, end={iters}, '
        f'milestones=[{iters * 2 // 3}, {iters * 11 // 12}], gamma=0.1)]',
        'default_hooks = dict(checkpoint=dict(by_epoch=False, '
        f'interval={iters}, max_keep_ckpts=1), logger=dict(interval=10))',
        'log_processor = dict(by_epoch=False)',
        f'randomness = dict(seed={seed})',
        f'load_from = {load_from!r}',
    ] + list(extra)
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        f.write('# Derived by mmselfdet.benchmarks (toy benchmark unit)\n')
        f.write('\n'.join(lines) + '\n')
    return out


def last_checkpoint(work_dir: str) -> str:
    ckpts = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')),
                   key=lambda p: int(re.findall(r'\d+', osp.basename(p))[0]))
    if not ckpts:
        raise FileNotFoundError(f'no iter_*.pth checkpoint in {work_dir}')
    return ckpts[-1]


def coco_maps(work_dir: str) -> Dict[str, float]:
    """bbox mAP / mAP50 of the run's final evaluation (0 when CocoMetric
    logged nothing: the detector output no box, an AP of 0)."""
    recs = [r for r in scalar_records(work_dir) if 'coco/bbox_mAP' in r]
    last = recs[-1] if recs else {}
    return dict(mAP=float(last.get('coco/bbox_mAP', 0.0)),
                mAP50=float(last.get('coco/bbox_mAP_50', 0.0)))


def run_finetune(folder: str, det_cfg: str, data_root: str, ann_file: str,
                 iters: int, seed: int, load_from: Optional[str] = None,
                 **kwargs) -> dict:
    """One fine-tuning run in ``folder`` (its derived ``config.py``, log and
    scalars; the weights are deleted, a table needs none): bbox mAP / mAP50,
    wall and CPU seconds. ``kwargs`` go to :func:`finetune_config`."""
    cfg = finetune_config(det_cfg, osp.join(folder, 'config.py'), data_root,
                          ann_file, iters, seed, load_from, **kwargs)
    log = osp.join(folder, 'log.txt')
    sec = run_tool(['tools/train.py', cfg, '--work-dir', folder], log)
    for ckpt in os.listdir(folder):
        if ckpt.endswith('.pth'):
            os.remove(osp.join(folder, ckpt))
    return dict(coco_maps(folder), seconds=sec,
                cpu_s=LAST_CPU.get(log, float('nan')))
