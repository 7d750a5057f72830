# Copyright (c) mmselfdet contributors. All rights reserved.
"""Mean +- std of fine-tuning runs per method and split.

Usage:
    python tools/aggregate_results.py work_dirs/low_data \
        [--metric coco/bbox_mAP] [--scale 100] [--out work_dirs/low_data/summary]

Reads every run under ROOT laid out as ``ROOT/<method>/<split>_seed<k>/``
(the ``--work-dir`` of ``tools/train.py``; ``<method>`` may be nested, e.g.
``mocov2/fpn``), takes the metric's last value from the run's newest
mmengine log (``<timestamp>/vis_data/scalars.json``) and prints one table
row per method, one column per split: mean +- sample std (n seeds), in
Markdown and CSV. Writes ``OUT.md``, ``OUT.csv`` and ``OUT.png`` (mean with
std error bars against the split's percentage, one line per method). Runs
without the metric are listed and left out of the statistics.
"""
import argparse
import csv
import glob
import io
import json
import os
import os.path as osp
import re
import statistics
import sys
from typing import Dict, List, Optional, Tuple

RUN_RE = re.compile(r'^(?P<split>.+)_seed(?P<seed>\d+)$')


def last_metric(run_dir: str, metric: str) -> Optional[float]:
    """The metric's last value in the newest ``vis_data/scalars.json`` of
    ``run_dir`` (mmengine writes one timestamped folder per launch)."""
    logs = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                     'scalars.json')))
    for path in reversed(logs):
        value = None
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rec = json.loads(line)
                    if metric in rec:
                        value = float(rec[metric])
        if value is not None:
            return value
    return None


def collect(root: str, metric: str
            ) -> Tuple[Dict[Tuple[str, str], Dict[int, float]], List[str]]:
    """``{(method, split): {seed: value}}`` and the runs without the
    metric."""
    results: Dict[Tuple[str, str], Dict[int, float]] = {}
    missing = []
    for dirpath, dirnames, _ in sorted(os.walk(root)):
        m = RUN_RE.match(osp.basename(dirpath))
        if m is None or dirpath == root:
            continue
        dirnames[:] = []  # a run folder holds no further runs
        method = osp.relpath(osp.dirname(dirpath), root)
        value = last_metric(dirpath, metric)
        if value is None:
            missing.append(dirpath)
            continue
        results.setdefault((method, m['split']), {})[int(m['seed'])] = value
    return results, missing


def split_key(split: str):
    """Sort splits by their percentage when they name one (``1pct``)."""
    m = re.match(r'^(\d+(?:\.\d+)?)pct$', split)
    return (0, float(m.group(1)), split) if m else (1, 0.0, split)


def summarise(results, scale: float = 1.0) -> List[dict]:
    rows = []
    for (method, split), seeds in sorted(results.items()):
        values = [seeds[s] * scale for s in sorted(seeds)]
        rows.append(dict(method=method, split=split, n=len(values),
                         mean=statistics.fmean(values),
                         std=statistics.stdev(values) if len(values) > 1
                         else 0.0, seeds=sorted(seeds), values=values))
    return rows


def markdown(rows: List[dict], metric: str) -> str:
    splits = sorted({r['split'] for r in rows}, key=split_key)
    methods = sorted({r['method'] for r in rows})
    cell = {(r['method'], r['split']): r for r in rows}
    lines = [f'| method \\ {metric} | ' + ' | '.join(splits) + ' |',
             '|---|' + '---|' * len(splits)]
    for m in methods:
        cells = []
        for s in splits:
            r = cell.get((m, s))
            cells.append('' if r is None else
                         f'{r["mean"]:.2f} ± {r["std"]:.2f} (n={r["n"]})')
        lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def to_csv(rows: List[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(['method', 'split', 'n', 'mean', 'std', 'seeds', 'values'])
    for r in sorted(rows, key=lambda r: (r['method'], split_key(r['split']))):
        w.writerow([r['method'], r['split'], r['n'], f'{r["mean"]:.4f}',
                    f'{r["std"]:.4f}', ' '.join(map(str, r['seeds'])),
                    ' '.join(f'{v:.4f}' for v in r['values'])])
    return buf.getvalue()


def plot(rows: List[dict], metric: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    splits = sorted({r['split'] for r in rows}, key=split_key)
    numeric = all(split_key(s)[0] == 0 for s in splits)
    xs = {s: (split_key(s)[1] if numeric else i)
          for i, s in enumerate(splits)}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for method in sorted({r['method'] for r in rows}):
        rs = sorted((r for r in rows if r['method'] == method),
                    key=lambda r: split_key(r['split']))
        ax.errorbar([xs[r['split']] for r in rs], [r['mean'] for r in rs],
                    yerr=[r['std'] for r in rs], marker='o', capsize=3,
                    label=method)
    if numeric:
        ax.set_xscale('log')
        ax.set_xticks([xs[s] for s in splits])
        ax.set_xticklabels([f'{xs[s]:g}%' for s in splits])
        ax.set_xlabel('labelled images')
    else:
        ax.set_xticks(list(range(len(splits))))
        ax.set_xticklabels(splits)
        ax.set_xlabel('split')
    ax.set_ylabel(f'{metric} (mean ± std over seeds)')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root', help='folder of runs: ROOT/<method>/<split>_seed<k>')
    p.add_argument('--metric', default='coco/bbox_mAP',
                   help='scalar to aggregate (VOC: pascal_voc/mAP)')
    p.add_argument('--scale', type=float, default=100.0,
                   help='multiply values (mmdet logs AP in [0, 1])')
    p.add_argument('--out', help='output prefix for .md/.csv/.png '
                   '(default: ROOT/summary)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.root):
        sys.exit(f'{args.root}: not a folder')
    results, missing = collect(args.root, args.metric)
    for path in missing:
        print(f'no "{args.metric}" in {path}: left out', file=sys.stderr)
    if not results:
        sys.exit(f'no run under {args.root} (ROOT/<method>/<split>_seed<k>) '
                 f'logged "{args.metric}"')
    rows = summarise(results, args.scale)
    table, table_csv = markdown(rows, args.metric), to_csv(rows)
    print(table + '\n\n' + table_csv, end='')
    print(f'{sum(r["n"] for r in rows)} runs aggregated, {len(missing)} '
          'without the metric')
    out = args.out or osp.join(args.root, 'summary')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out + '.md', 'w') as f:
        f.write(table + '\n')
    with open(out + '.csv', 'w') as f:
        f.write(table_csv)
    plot(rows, args.metric, out + '.png')
    print(f'wrote {out}.md, {out}.csv, {out}.png')


if __name__ == '__main__':
    main()
