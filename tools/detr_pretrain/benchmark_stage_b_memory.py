# Copyright (c) mmselfdet contributors. All rights reserved.
"""Peak memory of stage B's k-means per million boxes (synthetic, CPU).

Writes a synthetic ``(N, C)`` feature file (Gaussian blobs, written in
pieces), then, in a fresh child process, opens it as stage B does
(``--load mmap``: ``np.load(mmap_mode='r')``, or ``--load full``: the
whole array in memory, as stage B loaded it before session 7) and runs
``cluster_features`` on it. Reports the heap peak (``tracemalloc``: numpy
buffers and Python objects, i.e. memory the kernel cannot drop) and the
rise of the resident set (``ru_maxrss``; with a memory map it includes
file pages, which are page cache). With two or more ``--boxes`` sizes it
also reports the slope between the smallest and the largest, the memory
per million boxes without the fixed part (the seeding sample, one 16 MiB
piece of the passes). Run it from another checkout's ``PYTHONPATH`` to
measure another version of ``cluster_features``.

Example::

    python tools/detr_pretrain/benchmark_stage_b_memory.py \\
        --boxes 262144 524288 --dim 128 --dtype float16 --load mmap
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('--boxes', type=int, nargs='+', default=[262144, 524288],
                   help='N, one run per value')
    p.add_argument('--dim', type=int, default=512, help='C')
    p.add_argument('--num-classes', type=int, default=256, help='K')
    p.add_argument('--dtype', choices=('float16', 'float32'),
                   default='float16', help='dtype of the feature file')
    p.add_argument('--load', choices=('mmap', 'full'), default='mmap')
    p.add_argument('--max-iter', type=int, default=1,
                   help='k-means passes (memory does not depend on it)')
    p.add_argument('--work-dir', help='where the synthetic file goes '
                   '(default: a temporary folder, removed afterwards)')
    p.add_argument('--child', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def write_features(path: str, n: int, c: int, dtype: str,
                   seed: int = 0, chunk: int = 16384) -> None:
    """Blobs around 64 random centres, written ``chunk`` rows at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, c)).astype(np.float32) * 3
    out = np.lib.format.open_memmap(path, mode='w+', dtype=dtype,
                                    shape=(n, c))  # (N, C)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        out[s:s + m] = centres[rng.integers(0, 64, m)] + \
            rng.standard_normal((m, c)).astype(np.float32)
    out.flush()
    del out


def child(args) -> dict:
    """Measure in this (fresh) process; returns the numbers."""
    import tracemalloc
    from mmselfdet.simdetr import cluster_features
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.time()
    feats = np.load(args.child, mmap_mode='r' if args.load == 'mmap' else
                    None, allow_pickle=False)
    labels, _ = cluster_features(feats, args.num_classes, seed=0,
                                 max_iter=args.max_iter)
    secs = time.time() - t0
    heap = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    n, c = feats.shape
    return dict(boxes=n, dim=c, dtype=str(feats.dtype), load=args.load,
                num_classes=args.num_classes, seconds=round(secs, 1),
                used_clusters=int(len(np.unique(labels))),
                file_mb=round(feats.nbytes / 2**20, 1),
                heap_peak_mb=round(heap / 2**20, 1),
                rss_rise_mb=round(rss / 2**20, 1))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return None
    runs = [measure(args, n) for n in sorted(args.boxes)]
    if len(runs) > 1:
        a, b = runs[0], runs[-1]
        per_box = 1e6 / (b['boxes'] - a['boxes']) / 2**30
        print(json.dumps(dict(
            slope_from=a['boxes'], slope_to=b['boxes'],
            heap_gb_per_million_boxes=round(
                (b['heap_peak_mb'] - a['heap_peak_mb']) * 2**20 * per_box, 3),
            rss_gb_per_million_boxes=round(
                (b['rss_rise_mb'] - a['rss_rise_mb']) * 2**20 * per_box,
                3))), flush=True)
    return runs


def measure(args, n: int) -> dict:
    """Write an ``n``-row file, measure it in a child, delete it."""
    tmp = args.work_dir or tempfile.mkdtemp(prefix='stage_b_mem_')
    os.makedirs(tmp, exist_ok=True)
    path = osp.join(tmp, f'bench_{n}x{args.dim}_{args.dtype}.npy')
    try:
        write_features(path, n, args.dim, args.dtype)
        cmd = [sys.executable, osp.abspath(__file__), '--child', path,
               '--load', args.load, '--num-classes', str(args.num_classes),
               '--max-iter', str(args.max_iter)]
        out = subprocess.run(cmd, check=True, capture_output=True,
                             text=True).stdout
        stats = json.loads(out.strip().splitlines()[-1])
    finally:
        if osp.exists(path):
            os.remove(path)
        if not args.work_dir:
            os.rmdir(tmp)
    print(json.dumps(stats), flush=True)
    return stats


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
