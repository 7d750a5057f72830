# Copyright (c) mmselfdet contributors. All rights reserved.
"""Images per second of a config's training data pipeline.

Usage:
    python tools/benchmarks/pipeline_throughput.py CONFIG \
        [--num-images 256] [--workers 0 1 2] [--batch-size 32] \
        [--warmup 16] [--repeats 1] [--out-md docs/benchmarks.md] \
        [--md-mode append|replace] [--note TEXT] [--cfg-options ...]

An *image* is one source image taken through the whole pipeline, i.e. it
produces ALL its views (two 64 px crops for the MoCo v2 toy config), so the
numbers are source images per second, not views per second.

Two measurements, each after a warm-up:

1. one process: ``dataset[i]`` in a loop (loading, every view's transforms,
   packing), with ``torch.set_num_threads(1)``: the throughput of ONE CPU
   core;
2. a ``torch`` DataLoader built like the training one
   (``Runner.build_dataloader(cfg.train_dataloader)``: the config's sampler,
   collate function and worker seeding; ``batch_size`` and ``num_workers``
   overridden) for each ``--workers`` N. Warm-up and measured batches are
   rounded up to multiples of N so that workers that started together do
   not hand in their first batches "for free".

Besides images/s (the median of ``--repeats`` runs, with their range) the
table gives the CPU time spent per image by the main process and the
workers (read from ``/proc``): on a shared machine the rates move with the
load, the CPU cost per image hardly does.

``--out-md FILE`` writes the table as a ``###`` entry under the
``## Data pipeline throughput`` heading of FILE (created if missing, other
sections untouched; ``--md-mode append`` adds the entry after the earlier
ones, ``replace`` rewrites the whole section with only this entry).
"""
import argparse
import datetime
import gc
import math
import os
import os.path as osp
import platform
import shlex
import statistics
import subprocess
import sys
import time
from typing import List, Optional

SECTION = 'Data pipeline throughput'
SECTION_INTRO = """\
`tools/benchmarks/pipeline_throughput.py` measures how many **source images
per second** a config's training data pipeline delivers; one image = one
source image producing all of its views. "1 process" is `dataset[i]` in a
loop with one torch thread (the rate of one CPU core); "DataLoader, N
workers" is the config's train dataloader (`Runner.build_dataloader`, its
sampler and collate function) with `num_workers` overridden. Every number is
taken after a warm-up. Rates are only comparable on the same machine and
load: the load averages of the machine before and after each run are given,
and a load near or above the number of CPUs means other processes shared it.
"CPU ms/image" (CPU time of the main process and its workers per image)
depends far less on the load and is the number to compare across runs;
"main CPU ms/image" is the main (training) process's part of it.
"""


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Images/s of a config\'s training data pipeline (one '
        'image = one source image with all its views).')
    p.add_argument('config', help='config file')
    p.add_argument('--num-images', type=int, default=256,
                   help='images timed per measurement (after warm-up)')
    p.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2],
                   help='DataLoader num_workers values to measure')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--warmup', type=int, default=16,
                   help='images processed before timing starts')
    p.add_argument('--split', default='train',
                   help='measure <split>_dataloader (default train)')
    p.add_argument('--repeats', type=int, default=1,
                   help='repeat every measurement; the median is reported '
                   'with the range (useful on a shared machine)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-md', help='write the results into this markdown '
                   f'file under "## {SECTION}"')
    p.add_argument('--md-mode', choices=('append', 'replace'),
                   default='append', help='keep (append) or drop (replace) '
                   'the earlier entries of that section')
    p.add_argument('--note', help='a sentence added to the markdown entry')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# machine description
# --------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def num_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def git_commit(repo: str) -> str:
    def git(*args) -> Optional[str]:
        try:
            res = subprocess.run(
                ['git', *args], cwd=repo, capture_output=True, text=True,
                timeout=10, env=dict(os.environ, GIT_OPTIONAL_LOCKS='0'))
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git('rev-parse', '--short', 'HEAD')
    if commit is None:
        return 'unknown (not a git checkout)'
    dirty = git('status', '--porcelain', '--untracked-files=no')
    return commit + (' + uncommitted changes' if dirty else '')


def proc_cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a process (Linux ``/proc``)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            'SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return None


def load_avg() -> str:
    try:
        return ' / '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return 'n/a'


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------
def describe_views(sample: dict) -> str:
    inputs = sample.get('inputs') if isinstance(sample, dict) else None
    if isinstance(inputs, dict):
        parts = [f'{k} {tuple(v.shape[-2:])[1]}x{tuple(v.shape[-2:])[0]}'
                 for k, v in inputs.items()]
        return f'{len(inputs)} views ({", ".join(parts)})'
    if hasattr(inputs, 'shape'):
        return f'1 image {inputs.shape[-1]}x{inputs.shape[-2]}'
    return 'unknown output'


def time_single_process(dataset, num_images: int, warmup: int) -> dict:
    n = len(dataset)
    for i in range(warmup):
        dataset[i % n]
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + num_images):
        dataset[i % n]
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return dict(images=num_images, seconds=dt, cpu_share=cpu / dt,
                cpu_seconds=cpu, main_cpu_seconds=cpu)


def time_dataloader(loader_cfg: dict, dataset, workers: int,
                    batch_size: int, num_images: int, warmup: int,
                    seed: int) -> dict:
    from mmengine.runner import Runner
    cfg = dict(loader_cfg)
    cfg.update(dataset=dataset, batch_size=batch_size, num_workers=workers)
    if workers == 0:
        cfg['persistent_workers'] = False
        cfg.pop('prefetch_factor', None)
    t_start = time.perf_counter()
    loader = Runner.build_dataloader(cfg, seed=seed)
    unit = max(1, workers)
    warm_batches = unit * math.ceil(max(1, math.ceil(warmup / batch_size))
                                    / unit)
    batches = unit * math.ceil(max(1, math.ceil(num_images / batch_size))
                               / unit)
    images = 0
    it = iter(loader)
    restarted = False

    def next_batch():
        nonlocal it, restarted
        try:
            return next(it)
        except StopIteration:  # a finite sampler: start another epoch
            it = iter(loader)
            restarted = True
            return next(it)

    first = None
    for _ in range(warm_batches):
        next_batch()
        if first is None:
            first = time.perf_counter() - t_start
    # CPU time of the worker processes too (torch's iterator keeps them
    # in ``_workers``); unknown when a finite sampler restarted them
    pids = [w.pid for w in getattr(it, '_workers', [])]
    restarted = False
    w0 = [proc_cpu_seconds(p) for p in pids]
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(batches):
        batch = next_batch()
        images += len(batch['inputs']) if isinstance(
            batch['inputs'], (list, tuple)) else batch_size
    dt = time.perf_counter() - t0
    main_cpu = time.process_time() - c0
    w1 = [proc_cpu_seconds(p) for p in pids]
    worker_cpu = None
    if not restarted and None not in w0 + w1:
        worker_cpu = sum(b - a for a, b in zip(w0, w1))
    it = loader = None  # the workers go before gc.collect
    gc.collect()
    return dict(
        images=images, seconds=dt, first_batch=first,
        warm_batches=warm_batches,
        # main process for 0 workers, else how busy the workers were
        cpu_share=main_cpu / dt if workers == 0 else (
            None if worker_cpu is None else worker_cpu / (dt * workers)),
        cpu_seconds=None if workers and worker_cpu is None else
        main_cpu + (worker_cpu or 0.0),
        # the training process's share: with workers, receiving the batches
        main_cpu_seconds=main_cpu)


def rate(runs: List[dict]) -> float:
    """Median images/s of repeated runs."""
    return statistics.median(r['images'] / r['seconds'] for r in runs)


def fmt_rows(results: List[tuple], base: float) -> List[List[str]]:
    rows = []
    for name, runs in results:
        ips = rate(runs)
        all_ips = [r['images'] / r['seconds'] for r in runs]
        spread = f'{min(all_ips):.1f}-{max(all_ips):.1f}' \
            if len(runs) > 1 else ''
        cpu = [r['cpu_share'] for r in runs
               if r.get('cpu_share') is not None]
        cpu_ms = [1000 * r['cpu_seconds'] / r['images'] for r in runs
                  if r.get('cpu_seconds') is not None]
        main_ms = [1000 * r['main_cpu_seconds'] / r['images'] for r in runs
                   if r.get('main_cpu_seconds') is not None]
        first = [r['first_batch'] for r in runs
                 if r.get('first_batch') is not None]
        rows.append([
            name, f'{ips:.1f}', spread, f'{1000 / ips:.2f}',
            f'{ips / base:.2f}x',
            f'{statistics.median(cpu_ms):.2f}' if cpu_ms else '',
            f'{statistics.median(main_ms):.2f}' if main_ms else '',
            f'{statistics.median(cpu):.2f}' if cpu else '',
            f'{statistics.median(first):.2f}' if first else '',
            f'{runs[0]["images"]} x {len(runs)}'
        ])
    return rows


HEADER = ['setting', 'images/s', 'range', 'ms/image', 'vs 1 process',
          'CPU ms/image', 'main CPU ms/image', 'CPU/wall', 'first batch (s)',
          'images timed']


def print_table(rows: List[List[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows))
              for i, h in enumerate(HEADER)]
    print('  '.join(h.ljust(w) for h, w in zip(HEADER, widths)))
    print('  '.join('-' * w for w in widths))
    for r in rows:
        print('  '.join(c.ljust(w) for c, w in zip(r, widths)))


# --------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------
def md_entry(title: str, info: List[str], rows: List[List[str]]) -> str:
    lines = [f'### {title}', '']
    lines += [f'- {x}' for x in info]
    lines += ['', '| ' + ' | '.join(HEADER) + ' |',
              '|' + '|'.join('---' for _ in HEADER) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


def write_md(path: str, entry: str, mode: str) -> None:
    """Put ``entry`` under ``## SECTION`` of ``path`` leaving every other
    section as it is."""
    text = ''
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            text = f.read()
    lines = text.splitlines()
    head = f'## {SECTION}'
    start = next((i for i, ln in enumerate(lines) if ln.strip() == head),
                 None)
    if start is None:
        if not lines:
            lines = ['# Benchmarks', '']
        elif lines[-1].strip():
            lines.append('')
        lines += [head, '', *SECTION_INTRO.rstrip('\n').splitlines(), '',
                  *entry.rstrip('\n').splitlines(), '']
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith('## ')), len(lines))
        body = lines[start + 1:end]
        if mode == 'replace':  # the section anew: intro + this entry
            body = ['', *SECTION_INTRO.rstrip('\n').splitlines()]
        while body and not body[-1].strip():
            body.pop()
        body += ['', *entry.rstrip('\n').splitlines(), '']
        lines = lines[:start + 1] + body + lines[end:]
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines).rstrip('\n') + '\n')


def main(argv=None):
    args = parse_args(argv)
    load_before = load_avg()
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmengine.utils.dl_utils import set_multi_processing

    import mmselfdet  # noqa: F401
    from mmselfdet.registry import DATASETS

    if args.num_images < 1 or args.batch_size < 1 or args.warmup < 0 or \
            any(w < 0 for w in args.workers):
        sys.exit('--num-images and --batch-size must be >= 1, --warmup and '
                 '--workers >= 0')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # the multiprocessing / OpenCV settings the Runner would apply
    mp_cfg = cfg.get('env_cfg', {}).get('mp_cfg', {})
    set_multi_processing(**mp_cfg, distributed=False)
    torch.set_num_threads(1)
    set_random_seed(args.seed)
    key = f'{args.split}_dataloader'
    if cfg.get(key) is None or 'dataset' not in cfg[key]:
        sys.exit(f'config has no {key}.dataset')
    loader_cfg = cfg[key].to_dict() if hasattr(cfg[key], 'to_dict') else \
        dict(cfg[key])
    dataset = DATASETS.build(loader_cfg['dataset'])
    views = describe_views(dataset[0])
    print(f'{args.config}: {len(dataset)} images, each -> {views}')
    print(f'machine: {num_cpus()} CPUs ({cpu_model()}), load average '
          f'1/5/15 min before: {load_before}')

    reps = max(1, args.repeats)
    results = [('1 process, dataset[i] loop', [
        time_single_process(dataset, args.num_images, args.warmup)
        for _ in range(reps)])]
    for w in args.workers:
        runs = [time_dataloader(loader_cfg, dataset, w, args.batch_size,
                                args.num_images, args.warmup, args.seed)
                for _ in range(reps)]
        results.append((f'DataLoader, {w} worker{"s" if w != 1 else ""}',
                        runs))
    load_after = load_avg()
    base = rate(results[0][1])
    rows = fmt_rows(results, base)
    print(f'\nimages/s, one image = one source image with {views}; batch '
          f'{args.batch_size}, warm-up {args.warmup} images')
    print_table(rows)
    print(f'load average 1/5/15 min after: {load_after}')

    if args.out_md:
        repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
        cmd = ' '.join(shlex.quote(a) for a in
                       ['python', 'tools/benchmarks/pipeline_throughput.py',
                        *(sys.argv[1:] if argv is None else argv)])
        now = datetime.datetime.now().astimezone()
        info = [
            f'command: `{cmd}`',
            f'machine: {num_cpus()} CPUs (nproc), {cpu_model()}; '
            f'{platform.system()} {platform.release()}; Python '
            f'{platform.python_version()}, torch {torch.__version__}',
            f'git commit: {git_commit(repo)}',
            f'date: {now.strftime("%Y-%m-%d %H:%M %Z")}',
            f'one image = one source image -> {views}; batch size '
            f'{args.batch_size}, warm-up {args.warmup} images, '
            f'{args.num_images} images timed per run (DataLoader rows: whole '
            'batches, rounded up to multiples of the worker count), '
            f'{reps} run(s) per row: images/s is the median, range the '
            'slowest-fastest run; CPU ms/image = CPU time of the main '
            'process and the workers per image (hardly depends on the load); '
            'main CPU ms/image = the main process\'s part (with workers: '
            'receiving the batches); CPU/wall = CPU time / wall time of the '
            'process doing the work '
            '(in-process rows: the main process; worker rows: per worker); '
            'below 1 = it waited (for the CPU, or on a full prefetch queue)',
            f'load average (1 / 5 / 15 min) before: {load_before}, after: '
            f'{load_after}',
        ]
        if args.note:
            info.append(args.note)
        stem = osp.splitext(osp.basename(args.config))[0]
        write_md(args.out_md, md_entry(f'`{stem}`', info, rows),
                 args.md_mode)
        print(f'wrote the results to {args.out_md} (## {SECTION})')


if __name__ == '__main__':
    main()
