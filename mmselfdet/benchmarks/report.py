# Copyright (c) mmselfdet contributors. All rights reserved.
"""The toy benchmark's table: aggregation over seeds, verdicts, markdown,
CSV and a bar chart with error bars.

Verdicts are criteria that can fail:

* **learned** — the pretraining's final loss (mean of the last 10 % of its
  logged steps) is below the chance level ln(1 + K) by more than
  :data:`LOSS_MARGIN` (relative), *and* the k-NN probe of its backbone beats
  the random-init backbones' probe by more than 2 std of theirs. A loss
  below chance with a probe that is not above random reads "learned its
  pretext, not object features"; a loss at chance "did not learn". Methods
  without a chance level (BYOL, SoCo) are judged by the probe alone.
* **transfers** — its mean bbox mAP over the fine-tuning seeds is above
  random init's by more than 2 x the larger of the two std; *hurts* when
  below by as much; otherwise *no difference* (at this many seeds).
"""
import csv
import glob
import json
import os
import os.path as osp
import statistics
from typing import List, Optional, Sequence

from mmselfdet.benchmarks.methods import METHODS
from mmselfdet.benchmarks.presets import Preset
from mmselfdet.benchmarks.units import read_result

LOSS_MARGIN = 0.02  # relative: loss < chance * (1 - 0.02)
STD_FACTOR = 2.0


def mean_std(values: Sequence[float]) -> Optional[tuple]:
    """(mean, sample std) of ``values`` (std 0 for one value); None when
    empty."""
    values = list(values)
    if not values:
        return None
    mean = sum(values) / len(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def probe_score(probe: dict, kind: str = 'knn') -> float:
    """The ``kind`` (``knn`` / ``linear``) score of a probe result
    (``tools/benchmarks/probe.py --out``): top-1 % on crops."""
    if kind not in probe:
        raise KeyError(f'no {kind} score in the probe result '
                       f'{sorted(probe)}')
    return float(probe[kind][probe.get('metric', 'top1')])


def loss_verdict(pre: Optional[dict]) -> Optional[bool]:
    """True / False when the method has a chance level, else None."""
    if not pre or not pre.get('chance'):
        return None
    return pre['loss'] < pre['chance'] * (1 - LOSS_MARGIN)


def compare(method: tuple, base: tuple) -> str:
    """'transfers' / 'hurts' / 'no difference' of two (mean, std)."""
    gap = STD_FACTOR * max(method[1], base[1])
    if method[0] - base[0] > gap:
        return 'transfers'
    if base[0] - method[0] > gap:
        return 'hurts'
    return 'no difference'


def collect(work: str, preset: Preset, inits: List[str]) -> List[dict]:
    """One row per (init, detector, split) with every finished number."""
    probes, linear, probe_n = {}, {}, {}
    for init in inits:
        res = [r for r in (read_result(p) for p in sorted(
            glob.glob(osp.join(work, 'probe', f'{init}_s*')))) if r]
        probes[init] = mean_std([r['knn'] for r in res])
        probe_n[init] = len(res)
        linear[init] = mean_std([r['linear'] for r in res if 'linear' in r])
    rows = []
    for init in inits:
        pre = read_result(osp.join(work, 'pretrain', init))
        pipe = read_result(osp.join(work, 'pipeline', init))
        m = METHODS.get(init)
        for det in preset.detectors:
            for split in preset.splits:
                folder = osp.join(work, 'finetune', det, split)
                res = [read_result(p) for p in sorted(
                    glob.glob(osp.join(folder, f'{init}_s*')))]
                res = [r for r in res if r]
                if not res:
                    continue
                row = dict(init=init, label=m.label if m else 'random init',
                           detector=det, split=split, n=len(res),
                           mAP=mean_std([r['mAP'] for r in res]),
                           mAP50=mean_std([r['mAP50'] for r in res]),
                           probe=probes.get(init), linear=linear.get(init),
                           probe_n=probe_n.get(init, 0), pretrain=pre,
                           finetune_s=sum(r['seconds'] for r in res))
                rows.append(row)
        if pipe:
            rows += pipeline_rows(init, pipe, m.label if m else init)
    # verdicts against the random row of the same detector and split
    for row in rows:
        base = next((r for r in rows if r['init'] == 'random'
                     and r['detector'] == row['detector']
                     and r['split'] == row['split']), None)
        row['learned'] = learned(row, probes.get('random'))
        row['transfers'] = ('-' if row['init'] == 'random' or base is None
                            or not row['mAP'] or not base['mAP'] else
                            compare(row['mAP'], base['mAP']))
    return rows


def pipeline_rows(init: str, pipe: dict, label: str) -> List[dict]:
    """Rows of a method that runs its own pipeline and detector (the DETR
    pretraining): its fine-tuning from the export and from random init, per
    seed, on all of toy ``train`` with its own detector."""
    rows = []
    for who, lab in ((init, label), ('random', 'random init')):
        res = [r for r in pipe.get('finetune', []) if r['init'] ==
               ('random' if who == 'random' else 'simdetr')]
        if not res:
            continue
        rows.append(dict(
            init=who, label=lab, detector='deformable-detr (own)',
            split='100pct', n=len(res),
            mAP=mean_std([r['mAP'] for r in res]),
            mAP50=mean_std([r['mAP50'] for r in res]), probe=None,
            linear=None, pretrain=None,
            finetune_s=sum(r.get('seconds') or 0 for r in res)))
    return rows


def learned(row: dict, floor: Optional[tuple]) -> str:
    """Tell "learned nothing yet" from "learned something that is not
    object features" (issue 17): the pretext loss against its chance level,
    the probe against the random-init floor."""
    if row['init'] == 'random':
        return '-'
    by_loss = loss_verdict(row['pretrain'])
    by_probe = None
    if row['probe'] and floor:
        by_probe = row['probe'][0] > floor[0] + STD_FACTOR * floor[1]
    if by_probe is None and by_loss is None:
        return 'unknown'
    if by_probe is None:
        return 'learned (loss; no probe)' if by_loss else \
            'did not learn (loss at chance)'
    if by_probe:
        return 'learned' if by_loss is not False else \
            'learned (probe above random; loss at chance)'
    if by_loss:
        return ('learned its pretext, not object features (loss below '
                'chance, probe not above random)')
    return 'did not learn (probe not above random' + (
        ', loss at chance)' if by_loss is False else ')')


def _fmt(ms: Optional[tuple], digits: int = 3, n: int = 2) -> str:
    """``mean ± std``; the mean alone for one value (no spread to show)."""
    if not ms:
        return '-'
    if n == 1:
        return f'{ms[0]:.{digits}f}'
    return f'{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}'


def _loss(pre: Optional[dict]) -> str:
    if not pre:
        return '-'
    if not pre.get('chance'):
        return f'{pre["loss"]:.2f} (no chance level)'
    return f'{pre["loss"]:.2f} vs {pre["chance"]:.2f}'


def markdown(rows: List[dict], preset: Preset, name: str) -> str:
    head = (f'Preset `{name}`: pretraining {preset.pretrain_iters or "toy"}'
            f' steps of batch 32 (fair init: {preset.fair_init}), '
            f'fine-tuning {preset.finetune_iters} steps of batch 8, seeds '
            f'{list(preset.seeds)}; mean ± std over seeds. k-NN probe: '
            'top-1 on toy `val` object crops from `train` crops (random '
            f'init: seeds {list(preset.probe_seeds)}).\n\n')
    lines = ['| init | detector | split | bbox mAP | mAP50 | pretrain loss '
             'vs chance | k-NN probe % | linear probe % | learned | '
             'transfers | pretrain s | fine-tune s |', '|' + '---|' * 12]
    for r in rows:
        pre_s = r['pretrain']['seconds'] if r['pretrain'] else 0
        lines.append(
            f'| {r["label"]} | {r["detector"]} | {r["split"]} | '
            f'{_fmt(r["mAP"], n=r["n"])} | {_fmt(r["mAP50"], n=r["n"])} | '
            f'{_loss(r["pretrain"])} | '
            f'{_fmt(r["probe"], 1, r.get("probe_n", 2))} | '
            f'{_fmt(r.get("linear"), 1, r.get("probe_n", 2))} | '
            f'{r["learned"]}'
            f' | {r["transfers"]} | {pre_s:.0f} | {r["finetune_s"]:.0f} |')
    return head + '\n'.join(lines) + '\n'


def write_csv(rows: List[dict], path: str) -> None:
    keys = ['init', 'detector', 'split', 'n', 'mAP_mean', 'mAP_std',
            'mAP50_mean', 'mAP50_std', 'probe_mean', 'probe_std',
            'pretrain_loss', 'chance', 'learned', 'transfers']
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            pre = r['pretrain'] or {}
            w.writerow([r['init'], r['detector'], r['split'], r['n']] + [
                (v[i] if v else '') for v in (r['mAP'], r['mAP50'],
                                              r['probe']) for i in (0, 1)
            ] + [pre.get('loss', ''), pre.get('chance', ''), r['learned'],
                 r['transfers']])


def plot(rows: List[dict], path: str) -> None:
    """Bar chart of bbox mAP (mean ± std) per init, one panel per
    (detector, split)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = sorted({(r['detector'], r['split']) for r in rows if r['mAP']})
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(4 + 2.2 * len(panels), 3.6))
    for ax, (det, split) in zip(axes[0], panels):
        sub = [r for r in rows if (r['detector'], r['split']) == (det, split)
               and r['mAP']]
        xs = range(len(sub))
        ax.bar(xs, [r['mAP'][0] for r in sub],
               yerr=[r['mAP'][1] for r in sub], capsize=4,
               color=['0.6' if r['init'] == 'random' else 'C0'
                      for r in sub])
        ax.set_xticks(list(xs), [r['init'] for r in sub], rotation=45,
                      ha='right')
        ax.set_title(f'{det}, {split} of train')
        ax.set_ylabel('bbox mAP (toy val)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def unit_totals(work: str) -> dict:
    """Units finished under ``work`` and their summed wall and CPU
    seconds (CPU time: user + system of each tool and its workers)."""
    res = [read_result(osp.dirname(p)) for p in glob.glob(
        osp.join(work, '**', 'result.json'), recursive=True)]
    res = [r for r in res if r and 'seconds' in r]
    cpu = [r['cpu_s'] for r in res if r.get('cpu_s') == r.get('cpu_s')
           and r.get('cpu_s') is not None]
    return dict(units=len(res), wall_s=sum(r['seconds'] for r in res),
                cpu_s=sum(cpu), cpu_units=len(cpu))


def write_all(work: str, preset: Preset, inits: List[str], name: str,
              seconds: float) -> List[dict]:
    """Collect, print and write ``results.md`` / ``.csv`` / ``.png`` and
    ``results.json`` into ``work``."""
    rows = collect(work, preset, inits)
    os.makedirs(work, exist_ok=True)
    tot = unit_totals(work)
    text = markdown(rows, preset, name) + (
        f'\n{tot["units"]} units: {tot["wall_s"] / 60:.1f} min of unit wall '
        f'time, {tot["cpu_s"] / 60:.1f} CPU-min (of the {tot["cpu_units"]} '
        'units that recorded it)\n')
    print('\n' + text)
    print(f'wall time of this run {seconds / 60:.1f} min; files in {work}')
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(text)
    write_csv(rows, osp.join(work, 'results.csv'))
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=1, default=str)
    plot(rows, osp.join(work, 'results.png'))
    return rows


def paper_commands() -> str:
    """The cluster commands that reproduce each paper table from our
    configs (pretraining, export, downstream fine-tuning)."""
    from mmselfdet.benchmarks.units import REPO
    out = ['# Paper tables: pretraining (8 GPUs per node), export, '
           'downstream. Replace PARTITION / WORK.']
    for folder in sorted(os.listdir(osp.join(REPO, 'configs'))):
        path = osp.join(REPO, 'configs', folder)
        if folder.startswith('_') or folder == 'benchmarks' or \
                not osp.isdir(path):
            continue
        for cfg in sorted(os.listdir(path)):
            if not cfg.endswith('.py') or '_toy' in cfg:
                continue
            rel = f'configs/{folder}/{cfg}'
            stem = cfg[:-3]
            out += [f'\n# {rel}',
                    f'bash tools/dist_train.sh {rel} 8 '
                    f'--work-dir WORK/{stem}',
                    f'#   or: bash tools/slurm_train.sh PARTITION {stem} '
                    f'{rel} WORK/{stem}',
                    f'python tools/export_checkpoint.py '
                    f'WORK/{stem}/epoch_N.pth WORK/{stem}/exported.pth']
            bench = osp.join(REPO, 'configs', 'benchmarks', folder)
            for b in sorted(os.listdir(bench)) if osp.isdir(bench) else []:
                out.append(f'bash tools/dist_train.sh configs/benchmarks/'
                           f'{folder}/{b} 8 --cfg-options '
                           f'load_from=WORK/{stem}/exported.pth')
    return '\n'.join(out)
