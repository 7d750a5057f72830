# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo (offline selective search) against its end-to-end heat-map variant.

Run from the repository root (toy data in ``data/toy``)::

    python tools/benchmarks/soco_vs_e2e.py --parts step prep ar \\
        --e2e-checkpoint work_dirs/soco-e2e/iter_150.pth \\
        --out-md docs/benchmarks.md

Parts (each prints a Markdown section; ``--out-md`` replaces the section
of the same title in that file, or appends it):

* ``step``: wall time and peak memory of one training iteration (forward,
  backward, optimizer step) of the SoCo and end-to-end toy configs on the
  **same images** (the same batch through each config's own pipeline),
  interleaved A/B in one process so that load changes hit both alike; the
  ratio is the number to read. Peak memory: ``torch.cuda`` peak on a GPU;
  on the CPU the peak resident set of a fresh subprocess per method, minus
  its size after the model and batch are built.
* ``prep``: the offline cost only SoCo has: selective search (``fast``) on
  the toy images at their own size and on a sample resized to 500 px (what
  ImageNet / COCO images cost at ``--max-side 500``), the proposal file's
  bytes per image, and both extrapolated to COCO train2017 and ImageNet-1k
  at the measured rates (one process; divide by the cores you use). The
  end-to-end variant needs no file and no search: its proposals cost is
  inside the ``step`` time.
* ``ar``: proposal AR@10/100 on toy ``val``: selective search (fast) and the
  heat-map proposer of a random-init network and of ``--e2e-checkpoint``'s
  target network (``tools/heatmap_proposals.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

SOCO_CFG = 'configs/soco/soco-ss_r18_fpn_1xb32-150it_toy.py'
E2E_CFG = 'configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py'
SS_FILE = 'proposals/ss_fast_unlabeled.json'
DATASETS = {'COCO train2017': 118_287, 'ImageNet-1k train': 1_281_167}
TITLE = '## SoCo vs end-to-end heat-map SoCo'


def _git() -> str:
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                             cwd=_REPO_ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain'],
                               cwd=_REPO_ROOT, capture_output=True,
                               text=True).stdout.strip()
        return rev + (' + uncommitted changes' if dirty else '')
    except OSError:
        return 'unknown'


def _py() -> str:
    return sys.executable


def _run(cmd: List[str]) -> str:
    res = subprocess.run(cmd, cwd=_REPO_ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=os.environ.get(
                             'OMP_NUM_THREADS', '1')))
    if res.returncode != 0:
        raise RuntimeError(f'failed: {" ".join(cmd)}\n{res.stdout[-2000:]}\n'
                           f'{res.stderr[-2000:]}')
    return res.stdout


# --------------------------------------------------------------------------
# step: time and memory per iteration
# --------------------------------------------------------------------------
#: the methods of the ``step`` part: name -> (config, model overrides)
STEP_METHODS = {
    'SoCo': (SOCO_CFG, {}),
    'E2E': (E2E_CFG, {}),
    'E2E, no extra crops': (E2E_CFG, dict(extra_crops=None)),
}


def _build(cfg_path: str, data_root: str, batch_size: int, device: str,
           model_overrides: Optional[dict] = None):
    """Model, optimizer wrapper (mmengine ``OptimWrapper`` around SGD, lr
    0.01, momentum 0.9) and one collated batch of ``cfg_path``."""
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import mmselfdet  # noqa: F401
    from mmselfdet.registry import DATASETS as DS
    from mmselfdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(_REPO_ROOT, cfg_path))
    cfg.model.update(model_overrides or {})
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = data_root.rstrip('/') + '/'
    dataset = DS.build(ds_cfg)
    torch.manual_seed(0)
    import numpy as np
    np.random.seed(0)
    batch = pseudo_collate([dataset[i] for i in range(batch_size)])
    model = MODELS.build(cfg.model).to(device)
    model.train()
    from mmengine.optim import build_optim_wrapper
    opt = build_optim_wrapper(model, dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    return model, opt, batch


def _step(model, opt, batch) -> None:
    """One training iteration as the runner does it: ``model.train_step``
    (data preprocessor, ``loss`` mode, ``parse_losses``, backward, step)."""
    model.train_step(batch, opt)


def _sync(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def step_times(data_root: str, batch_size: int, iters: int, warmup: int,
               device: str) -> Dict[str, dict]:
    """Interleaved per-iteration wall times (median) of both methods."""
    import statistics

    import torch
    built = {name: _build(cfg, data_root, batch_size, device, over)
             for name, (cfg, over) in STEP_METHODS.items()}
    times = {name: [] for name in built}
    cpu = {name: [] for name in built}
    peak = {}
    for name, (model, opt, batch) in built.items():
        for _ in range(warmup):
            _step(model, opt, batch)
    for _ in range(iters):
        for name, (model, opt, batch) in built.items():
            if device.startswith('cuda'):
                torch.cuda.reset_peak_memory_stats()
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            _step(model, opt, batch)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if device.startswith('cuda'):
                peak[name] = max(peak.get(name, 0),
                                 torch.cuda.max_memory_allocated())
    out = {}
    for name, ts in times.items():
        out[name] = dict(median_s=statistics.median(ts), min_s=min(ts),
                         max_s=max(ts), n=len(ts),
                         cpu_s=statistics.median(cpu[name]))
        if name in peak:
            out[name]['peak_mb'] = peak[name] / 2**20
    return out


def step_memory_cpu(data_root: str, batch_size: int, method: str) -> float:
    """Peak RSS growth (MiB) of training steps, in this (fresh) process: the
    current resident set is sampled during the steps and compared with the
    one after model, dataset and batch are built (the process's own peak
    RSS would be set by building the dataset, not by the steps)."""
    cfg_path, overrides = STEP_METHODS[method]
    model, opt, batch = _build(cfg_path, data_root, batch_size, 'cpu',
                               overrides)
    import gc
    import threading
    page = os.sysconf('SC_PAGE_SIZE')

    def rss() -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * page

    gc.collect()
    base = rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:  # the current RSS every 2 ms, its maximum kept
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    for _ in range(3):
        _step(model, opt, batch)
    done.set()
    watcher.join()
    return (peak[0] - base) / 2**20


def part_step(args) -> str:
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    times = step_times(args.data_root, args.batch_size, args.iters,
                       args.warmup, device)
    if not device.startswith('cuda'):
        for name in STEP_METHODS:
            # the result comes back in a file: stdout may hold lines that
            # imports print (e.g. onedl-mmdetection's)
            with tempfile.TemporaryDirectory() as tmp:
                res_file = osp.join(tmp, 'memory.json')
                _run([_py(), osp.abspath(__file__), '--memory-worker', name,
                      '--memory-out', res_file, '--data-root',
                      args.data_root, '--batch-size', str(args.batch_size)])
                with open(res_file) as f:
                    times[name]['peak_mb'] = float(json.load(f)['peak_mb'])
    mem = ('peak memory (MiB): torch.cuda.max_memory_allocated'
           if device.startswith('cuda') else
           'peak memory (MiB): the largest resident set (sampled every 2 ms) of '
           'a fresh process during 3 steps, minus its size after the model, '
           'the dataset and the batch are built')
    lines = [
        f'### Per iteration (batch {args.batch_size}, {device})', '',
        f'- configs: `{SOCO_CFG}` (selective-search boxes) and `{E2E_CFG}` '
        '(heat-map boxes, cutout in the V2 / V3 boxes, 2 extra crops per '
        'box; also with `extra_crops=None`: without the crops); the same '
        f'{args.batch_size} toy images through each config\'s pipeline; '
        f'{args.warmup} warm-up steps each, then {args.iters} steps each, '
        'alternating A/B', f'- {mem}', '',
        '- CPU s/iter: CPU time of the process per step (one torch thread: '
        'the compute itself, nearly independent of the load)', '',
        '| method | median s/iter (wall) | min-max | CPU s/iter | '
        'peak memory (MiB) | wall vs SoCo | CPU vs SoCo |',
        '|---|---|---|---|---|---|---|'
    ]
    for name in STEP_METHODS:
        t = times[name]
        lines.append(
            f'| {name} | {t["median_s"]:.3f} | {t["min_s"]:.3f}-'
            f'{t["max_s"]:.3f} | {t["cpu_s"]:.3f} | '
            f'{t.get("peak_mb", float("nan")):.0f} | '
            f'{t["median_s"] / times["SoCo"]["median_s"]:.2f}x | '
            f'{t["cpu_s"] / times["SoCo"]["cpu_s"]:.2f}x |')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# prep: selective search cost and file size
# --------------------------------------------------------------------------
def _ss(img_root: str, ann: str, out: str, extra: Sequence[str] = ()
        ) -> float:
    """CPU seconds (user + system) of a one-process selective search run:
    unlike wall time it hardly depends on what else runs on the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _run([_py(), 'tools/generate_proposals.py', img_root, '--ann-file', ann,
          '--out', out, '--mode', 'fast', '--workers', '1', *extra])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                 before.ru_stime)


def part_prep(args) -> str:
    import cv2
    root = args.data_root
    tmp = tempfile.mkdtemp(prefix='soco_prep_')
    # the toy images at their own size (a subset of `unlabeled`)
    with open(osp.join(root, 'annotations', 'unlabeled.json')) as f:
        coco = json.load(f)
    sub = dict(coco, images=coco['images'][:args.prep_images],
               annotations=[])
    sub_ann = osp.join(tmp, 'sub.json')
    with open(sub_ann, 'w') as f:
        json.dump(sub, f)
    # CPU of a one-image run = process start + imports, subtracted below
    one_ann = osp.join(tmp, 'one.json')
    with open(one_ann, 'w') as f:
        json.dump(dict(coco, images=coco['images'][:1], annotations=[]), f)
    start_cpu = _ss(osp.join(root, 'unlabeled'), one_ann,
                    osp.join(tmp, 'one_out.json'), ['--max-side', '128'])
    out = osp.join(tmp, 'ss_toy.json')
    sec = _ss(osp.join(root, 'unlabeled'), sub_ann, out,
              ['--max-side', '128'])
    toy_rate = (sec - start_cpu) / (len(sub['images']) - 1)
    toy_bytes = osp.getsize(out) / len(sub['images'])
    # a sample resized to 500 px: what real images cost at --max-side 500
    big = osp.join(tmp, 'big')
    os.makedirs(big)
    for im in sub['images'][:args.prep_images_500]:
        img = cv2.imread(osp.join(root, 'unlabeled', im['file_name']))
        cv2.imwrite(osp.join(big, im['file_name']),
                    cv2.resize(img, (500, 500)))
    out_big = osp.join(tmp, 'ss_500.json')
    sec_big = _ss(big, '', out_big)
    n_big = len(os.listdir(big))
    big_rate = (sec_big - start_cpu) / (n_big - 1)
    big_bytes = osp.getsize(out_big) / n_big
    lines = [
        '### Preparation cost (SoCo only; the end-to-end variant has none)',
        '',
        f'- selective search `fast`, one process (`--workers 1`), CPU '
        'seconds (user + system) per image, the CPU of a one-image run '
        '(process start, imports) subtracted, '
        f'{len(sub["images"])} toy `unlabeled` images at 128 px and '
        f'{n_big} of them resized to 500x500; bytes = proposal json size '
        '(all boxes kept, as `tools/generate_proposals.py` writes them)', '',
        '| input | CPU s/image | bytes/image |', '|---|---|---|',
        f'| toy 128 px | {toy_rate:.3f} | {toy_bytes:,.0f} |',
        f'| 500 px | {big_rate:.3f} | {big_bytes:,.0f} |', '',
        '| dataset | images | search CPU time | proposal file | '
        'heat-map variant |', '|---|---|---|---|---|',
        f'| toy unlabeled (128 px) | 1,000 | {toy_rate * 1000 / 60:.1f} min '
        f'| {toy_bytes * 1000 / 2**20:.1f} MiB | 0 s, 0 bytes |'
    ]
    for name, num in DATASETS.items():
        lines.append(
            f'| {name} (at 500 px) | {num:,} | '
            f'{big_rate * num / 3600:,.0f} h ({big_rate * num / 86400:.1f} '
            f'core-days) | {big_bytes * num / 2**30:.1f} GiB | 0 s, 0 bytes |')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# ar: proposal recall on toy val
# --------------------------------------------------------------------------
def _ar(props: str, gt: str) -> List[float]:
    """AR@10 and AR@100 of ``props``, read from eval_proposals' ``--out``
    json (not its stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        res_file = osp.join(tmp, 'ar.json')
        _run([_py(), 'tools/eval_proposals.py', props, gt, '--max-dets',
              '10', '100', '--out', res_file])
        with open(res_file) as f:
            res = json.load(f)
    return [float(res['AR@10']), float(res['AR@100'])]


def part_ar(args) -> str:
    root = args.data_root
    gt = osp.join(root, 'annotations', 'val.json')
    tmp = tempfile.mkdtemp(prefix='soco_ar_')
    rows = []
    ss = osp.join(tmp, 'ss.json')
    _ss(osp.join(root, 'val'), gt, ss, ['--max-side', '128'])
    rows.append(('selective search, fast, 128 px (all boxes; what the toy '
                 'SoCo run uses)', _ar(ss, gt)))
    heat = [('heat map, random-init R18', None)]
    if args.e2e_checkpoint:
        heat.append((f'heat map, end-to-end target R18 '
                     f'(`{osp.basename(args.e2e_checkpoint)}`)',
                     args.e2e_checkpoint))
    for name, ckpt in heat:
        out = osp.join(tmp, 'heat.json')
        cmd = [_py(), 'tools/heatmap_proposals.py', E2E_CFG,
               osp.join(root, 'val'), '--ann-file', gt, '--out', out,
               '--size', str(args.ar_size), '--num-boxes', '100']
        if ckpt:
            cmd += ['--checkpoint', ckpt]
        _run(cmd)
        rows.append((f'{name}, {args.ar_size} px input', _ar(out, gt)))
    lines = [
        '### Proposal recall on toy `val`', '',
        '- AR over IoU 0.5:0.95 (`tools/eval_proposals.py`); heat-map '
        'boxes from `tools/heatmap_proposals.py` with the end-to-end toy '
        "config's proposer (its heat stage and thresholds), up to 100 "
        'boxes per image', '', '| proposals | AR@10 | AR@100 |', '|---|---|---|'
    ]
    lines += [f'| {n} | {a[0]:.3f} | {a[1]:.3f} |' for n, a in rows]
    return '\n'.join(lines)


def write_md(path: str, text: str, title: str) -> None:
    """Replace the section starting at ``title`` (up to the next ``## ``) in
    ``path``, or append it."""
    old = open(path).read() if osp.isfile(path) else ''
    if title + '\n' in old:
        start = old.index(title + '\n')
        nxt = old.find('\n## ', start + len(title))
        end = len(old) if nxt < 0 else nxt + 1
        new = old[:start] + text.rstrip() + '\n' + (
            '\n' + old[end:] if nxt >= 0 else '')
    else:
        new = old.rstrip() + '\n\n' + text.rstrip() + '\n'
    with open(path, 'w') as f:
        f.write(new)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--parts', nargs='+', default=['step', 'prep', 'ar'],
                   choices=('step', 'prep', 'ar'))
    p.add_argument('--data-root', default='data/toy')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--device', default=None)
    p.add_argument('--prep-images', type=int, default=200)
    p.add_argument('--prep-images-500', type=int, default=10)
    p.add_argument('--ar-size', type=int, default=128)
    p.add_argument('--e2e-checkpoint', default=None)
    p.add_argument('--out-md', default=None)
    p.add_argument('--note', default=None)
    p.add_argument('--memory-worker', default=None, help=argparse.SUPPRESS)
    p.add_argument('--memory-out', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.chdir(_REPO_ROOT)
    if args.memory_worker:
        import torch
        torch.set_num_threads(1)
        peak = step_memory_cpu(args.data_root, args.batch_size,
                               args.memory_worker)
        if args.memory_out:
            with open(args.memory_out, 'w') as f:
                json.dump(dict(peak_mb=peak), f)
        print(peak)
        return 0
    if not osp.isfile(osp.join(args.data_root, SS_FILE)):
        raise FileNotFoundError(
            f'{osp.join(args.data_root, SS_FILE)} is missing: the SoCo toy '
            'config needs it; make it with tools/generate_proposals.py (see '
            f'{SOCO_CFG})')
    load = os.getloadavg()
    sections = []
    for part in args.parts:
        print(f'running {part} ...', flush=True)
        sections.append(dict(step=part_step, prep=part_prep,
                             ar=part_ar)[part](args))
        print(sections[-1] + '\n', flush=True)
    load_after = os.getloadavg()
    cmd = 'python tools/benchmarks/soco_vs_e2e.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    title = f'{TITLE}: {", ".join(args.parts)}'
    head = [
        title, '', f'- command: `{cmd}`',
        f'- machine: {os.cpu_count()} CPUs, {platform.processor() or "cpu"};'
        f' Python {platform.python_version()}',
        f'- git commit: {_git()}',
        f'- date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}',
        f'- load average before: {load[0]:.2f} / {load[1]:.2f} / '
        f'{load[2]:.2f}, after: {load_after[0]:.2f} / {load_after[1]:.2f} / '
        f'{load_after[2]:.2f}'
    ]
    if args.note:
        head.append(f'- {args.note}')
    text = '\n'.join(head) + '\n\n' + '\n\n'.join(sections) + '\n'
    if args.out_md:
        write_md(args.out_md, text, title)
        print(f'written to {args.out_md}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
