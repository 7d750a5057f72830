# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stages 3-5 of own-data pretraining: the preparation commands (resumable,
skipped when done), the training command (1 process, torchrun, SLURM) and
the export of the transfer set."""
import hashlib
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import List, Optional, Tuple

from .common import REPO, Method


def preparation(args, method: Method, prep: dict, root: str,
                images_json: str, workers: int) -> List[Tuple[str, list,
                                                              str]]:
    """The preparation steps: (title, command, output file)."""
    py, extra = sys.executable, shlex.split(args.prepare_args)
    if method.prepare == 'selective_search':
        return [('selective-search proposals', [
            py, osp.join(REPO, 'tools/generate_proposals.py'), root,
            '--ann-file', images_json, '--out', prep['proposals'], '--mode',
            'fast', '--workers', str(workers)] + extra, prep['proposals'])]
    if method.prepare == 'detr_stages':
        tools = osp.join(REPO, 'tools', 'detr_pretrain')
        return [
            ('stage A: feature-cluster proposals', [
                py, osp.join(tools, 'make_proposals.py'), images_json,
                '--img-root', root, '--checkpoint', osp.abspath(args.backbone),
                '--arch', f'resnet{prep["depth"]}', '--out',
                prep['proposals'], '--workers', str(workers)] + extra,
             prep['proposals']),
            ('stage B: k-means pseudo-classes', [
                py, osp.join(tools, 'cluster_pseudo_labels.py'),
                prep['proposals'], '--num-classes', str(prep['num_classes']),
                '--out', prep['labels']], prep['labels'])]
    return []


def run_step(cmd: list, out: str, images_json: str) -> None:
    """Run a preparation command unless ``out`` was made by the same
    command from the same image list (a stamp beside it says so); an
    interrupted step resumes through the tool's own partial files."""
    with open(images_json, 'rb') as f:
        stamp = dict(cmd=cmd[1:], images=hashlib.md5(f.read()).hexdigest())
    stamp_file = out + '.done.json'
    if osp.isfile(out) and osp.isfile(stamp_file):
        with open(stamp_file) as f:
            if json.load(f) == stamp:
                print(f'    {out} exists (same command and images): skipped')
                return
    os.makedirs(osp.dirname(out), exist_ok=True)
    print('    ' + shlex.join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=REPO)
    if code != 0:
        raise SystemExit(f'error: preparation failed (exit code {code}); '
                         'rerun the same command to resume it:\n  ' +
                         shlex.join(cmd))
    with open(stamp_file, 'w') as f:
        json.dump(stamp, f)


def launch_command(args, cfg_path: str, work: str) -> Tuple[list, dict]:
    """The training command and the environment variables it needs."""
    tail = ['--resume'] if args.resume else []
    env = dict(PYTHON=sys.executable)
    if args.launcher == 'slurm':
        env.update(GPUS=str(args.gpus),
                   GPUS_PER_NODE=str(min(args.gpus, args.gpus_per_node)))
        return ['bash', osp.join(REPO, 'tools/slurm_train.sh'),
                args.partition, args.job_name or f'pretrain-{args.method}',
                cfg_path, work] + tail, env
    if args.launcher == 'pytorch':
        return ['bash', osp.join(REPO, 'tools/dist_train.sh'), cfg_path,
                str(args.gpus), '--work-dir', work] + tail, env
    return [sys.executable, osp.join(REPO, 'tools/train.py'), cfg_path,
            '--work-dir', work] + tail, {}


def latest_checkpoint(work: str) -> str:
    """The checkpoint ``work/last_checkpoint`` points to."""
    pointer = osp.join(work, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    raise SystemExit(f'error: training wrote no checkpoint in {work}')


def show(cmd: list, env: dict) -> str:
    """``cmd`` as a shell line, after the variables of ``env`` it needs."""
    return ' '.join(f'{k}={v}' for k, v in env.items() if k != 'PYTHON') + \
        (' ' if len(env) > 1 else '') + shlex.join(cmd)


def train(cmd: list, env: dict) -> None:
    """Run the training command from the repository root."""
    code = subprocess.call(cmd, cwd=REPO, env=dict(os.environ, **env))
    if code != 0:
        raise SystemExit(f'error: training failed (exit code {code})'
                         '; add --resume to continue from the '
                         'latest checkpoint')


def export(work: str, exported: str, downstream: str,
           parts: Optional[List[str]]) -> Tuple[str, dict]:
    """Export the latest checkpoint of ``work`` for ``downstream``; returns
    (checkpoint, key report)."""
    from mmselfdet.export.exporter import ExportError, export_checkpoint
    ckpt = latest_checkpoint(work)
    try:
        rep = export_checkpoint(ckpt, exported, downstream_config=downstream,
                                parts=parts, log=lambda s: print('    ' + s))
    except (ExportError, KeyError, ValueError) as e:
        raise SystemExit(
            f'error: export failed: {e}\n  retry with: python '
            f'tools/export_checkpoint.py {ckpt} {exported} '
            '--downstream-config YOUR_DETECTOR_CONFIG') from e
    return ckpt, rep
