# Copyright (c) mmselfdet contributors. All rights reserved.
"""The main job: toy data -> pretrain -> export -> fine-tune -> AP table.

``python -m mmselfdet.quickstart`` (or ``bash tools/quickstart.sh``, which
sets up the environment first) runs, on the built-in toy data:

1. generates the toy dataset if absent (``data/toy``);
2. pretrains each requested method with its ``*_toy.py`` config;
3. exports the transferable weights in mmdet format;
4. fine-tunes stock mmdet RetinaNet R18 from each export and from random
   init, evaluating COCO bbox mAP on the toy ``val`` split;
5. prints (and writes to ``<work-dir>/results.md``) a table: init, bbox
   mAP, mAP50, whether pretraining beat the chance loss, wall times.

Every step is a subprocess running the same tools a user runs
(``tools/train.py``, ``tools/export_checkpoint.py``); their logs go to
``<work-dir>/logs``, and progress is shown here.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# method name -> toy pretraining config (relative to the repository)
METHODS: Dict[str, str] = {
    'mocov2': 'configs/mocov2/mocov2_r18_1xb32-180it_toy.py',
    'byol': 'configs/byol/byol_r18_1xb32-110it_toy.py',
    'insloc': 'configs/insloc/insloc_r18_fpn_1xb32-150it_toy.py',
    'detco': 'configs/detco/detco_r18_1xb32-60it_toy.py',
    'mocov2-objcrop': 'configs/objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py',
    'byol-objcrop': 'configs/objcrop/byol-objcrop_r18_1xb32-110it_toy.py',
    # SoCo on the toy ground-truth boxes: the oracle row
    'soco-gtboxes': 'configs/soco/soco-gtboxes_r18_fpn_1xb32-150it_toy.py',
    'soco-ss': 'configs/soco/soco-ss_r18_fpn_1xb32-150it_toy.py',
    'soco-e2e': 'configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py',
}
# old method name -> (new name, what it is): refused with this explanation
RENAMED: Dict[str, tuple] = {
    'soco': ('soco-gtboxes', 'SoCo on the toy ground-truth boxes, the '
             'oracle row; the proposal-based rows are soco-ss and soco-e2e'),
}
# offline preparation a method needs before pretraining: method -> (output
# relative to the data root, command with {root} and {out} placeholders); it
# runs once (skipped when the output exists) and its time is reported
PREPARE: Dict[str, tuple] = {
    'soco-ss': ('proposals/ss_fast_unlabeled.json', [
        'tools/generate_proposals.py', '{root}/unlabeled', '--ann-file',
        '{root}/annotations/unlabeled.json', '--out', '{out}', '--mode',
        'fast', '--max-side', '128', '--workers', '2'
    ]),
}
FINETUNE_CFG = 'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog='python -m mmselfdet.quickstart',
        description='Pretrain on the toy data, fine-tune RetinaNet, print AP.')
    p.add_argument('--methods', nargs='+', default=['mocov2'],
                   help=f'pretraining methods, from {sorted(METHODS)}')
    p.add_argument('--no-random-init', action='store_true',
                   help='skip the random-init fine-tuning row')
    p.add_argument('--work-dir', default='work_dirs/quickstart')
    p.add_argument('--data-root', default='data/toy')
    p.add_argument('--pretrain-iters', type=int,
                   help='override the pretraining steps of the toy configs')
    p.add_argument('--finetune-epochs', type=int,
                   help='override the fine-tuning epochs')
    p.add_argument('--toy-size', nargs=3, type=int,
                   metavar=('UNLABELED', 'TRAIN', 'VAL'),
                   help='image counts of the toy splits (default 1000 200 100)')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    renamed = [m for m in args.methods if m in RENAMED]
    if renamed:
        p.error('; '.join(f'method {m!r} is now called {RENAMED[m][0]!r} '
                          f'({RENAMED[m][1]})' for m in renamed))
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        p.error(f'unknown method(s) {unknown}; choose from {sorted(METHODS)}')
    return args


class Step:
    """Print a step header and its wall time."""

    def __init__(self, title: str):
        self.title = title

    def __enter__(self):
        print(f'\n==> {self.title}', flush=True)
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.time() - self.t0
        if exc[0] is None:
            print(f'    done in {self.seconds:.0f} s', flush=True)


_PROGRESS = re.compile(
    r'(Epoch|Iter)\((train|val|test)\)\s*\[([^\]]*)\](?:\[([^\]]*)\])?(.*)')


def run_logged(cmd: List[str], log_file: str, env: Optional[dict] = None
               ) -> None:
    """Run ``cmd``, tee its output to ``log_file`` and print a one-line
    progress digest of mmengine's log lines."""
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                cwd=REPO, env=env)
        for line in proc.stdout:
            log.write(line)
            m = _PROGRESS.search(line)
            if m:
                kind, phase, a, b, rest = m.groups()
                where = f'{a}' + (f' {b}' if b else '')
                keys = re.findall(
                    r'(loss(?:_\w+)?|contrast_chance|coco/bbox_mAP): '
                    r'([-\d.]+)', rest)
                shown = '  '.join(f'{k}={v}' for k, v in keys[:3])
                print(f'    {phase:5s} [{where}] {shown}', flush=True)
            elif 'coco/bbox_mAP' in line and 'bbox_mAP_copypaste' not in line:
                print('    ' + line.strip()[-160:], flush=True)
        code = proc.wait()
    if code != 0:
        with open(log_file) as f:
            tail = ''.join(f.readlines()[-30:])
        raise RuntimeError(f'command failed ({code}): {" ".join(cmd)}\n'
                           f'--- last lines of {log_file} ---\n{tail}')


def last_scalars(work_dir: str) -> dict:
    """Merge the scalars mmengine logged in ``work_dir`` (latest run)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    merged: dict = {}
    with open(files[-1]) as f:
        for line in f:
            merged.update(json.loads(line))
    return merged


def pretrain_verdict(work_dir: str) -> str:
    """Last logged total loss against the chance level of the contrastive
    losses (the sum of their weighted ``*contrast_chance`` metrics)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    last = None
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                last = rec
    if last is None:
        return 'n/a'
    loss = last['loss']
    chance = sum(v for k, v in last.items() if k.endswith('contrast_chance'))
    if chance <= 0:
        return f'{loss:.2f} (no chance level)'
    verdict = '(learned)' if loss < chance else '(NOT below chance)'
    return f'{loss:.2f} vs {chance:.2f} {verdict}'


def dataset_key(cfg_path: str) -> str:
    """The config key of the image dataset (inside wrappers such as
    ``MultiImageMixDataset``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, cfg_path))
    key, ds = 'train_dataloader.dataset', cfg.train_dataloader.dataset
    while 'dataset' in ds:
        key, ds = key + '.dataset', ds.dataset
    return key


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    py = sys.executable
    work = osp.abspath(args.work_dir)
    data_root = osp.abspath(args.data_root)
    os.makedirs(work, exist_ok=True)
    t_start = time.time()

    with Step(f'[1] toy dataset in {data_root}'):
        from mmselfdet.datasets.toy import generate_toy_dataset
        kw = {}
        if args.toy_size:
            kw = dict(num_unlabeled=args.toy_size[0],
                      num_train=args.toy_size[1], num_val=args.toy_size[2])
        generate_toy_dataset(data_root, seed=args.seed, progress=True, **kw)

    rows = []
    inits = [(m, METHODS[m]) for m in args.methods]
    if not args.no_random_init:
        inits = [('random', None)] + inits
    ft_opts = [
        f'train_dataloader.dataset.data_root={data_root}/',
        f'val_dataloader.dataset.data_root={data_root}/',
        f'test_dataloader.dataset.data_root={data_root}/',
        f'val_evaluator.ann_file={data_root}/annotations/val.json',
        f'test_evaluator.ann_file={data_root}/annotations/val.json',
    ]
    if args.finetune_epochs:
        e = args.finetune_epochs
        ft_opts += [f'train_cfg.max_epochs={e}', f'train_cfg.val_interval={e}',
                    f'default_hooks.checkpoint.interval={e}']

    for i, (name, cfg) in enumerate(inits):
        row = dict(init=name, prepare_s=0.0, pretrain_s=0.0, learned='-')
        load = []
        if name in PREPARE:
            rel, template = PREPARE[name]
            out = osp.join(data_root, rel)
            if osp.isfile(out):
                print(f'\n==> [{i + 2}-] {name}: {out} exists, not remade '
                      '(preparation time not counted)')
            else:
                cmd = [py] + [a.format(root=data_root, out=out)
                              for a in template]
                with Step(f'[{i + 2}-] prepare {name} -> {out}') as s:
                    run_logged(cmd, osp.join(work, 'logs',
                                             f'{name}_prepare.log'))
                row['prepare_s'] = s.seconds
        if cfg is not None:
            pre_dir = osp.join(work, name, 'pretrain')
            opts = [f'{dataset_key(cfg)}.data_root={data_root}/']
            if args.pretrain_iters:
                n = args.pretrain_iters
                opts += [f'train_cfg.max_iters={n}',
                         f'default_hooks.checkpoint.interval={n}',
                         f'param_scheduler.0.T_max={n}',
                         f'param_scheduler.0.end={n}']
            with Step(f'[{i + 2}a] pretrain {name} ({cfg})') as s:
                run_logged([py, 'tools/train.py', cfg, '--work-dir', pre_dir,
                            '--cfg-options'] + opts,
                           osp.join(work, 'logs', f'{name}_pretrain.log'))
            row['pretrain_s'] = s.seconds
            row['learned'] = pretrain_verdict(pre_dir)
            ckpts = sorted(glob.glob(osp.join(pre_dir, 'iter_*.pth')),
                           key=lambda p: int(re.findall(r'\d+', p)[-1]))
            if not ckpts:
                raise FileNotFoundError(f'no checkpoint written in {pre_dir}')
            exported = osp.join(work, name, 'exported.pth')
            with Step(f'[{i + 2}b] export {name} -> {exported}'):
                # RetinaNet has no RoI head: every method transfers its
                # backbone (the same part for all rows of the table)
                run_logged([py, 'tools/export_checkpoint.py', ckpts[-1],
                            exported, '--downstream-config', FINETUNE_CFG,
                            '--parts', 'backbone.'],
                           osp.join(work, 'logs', f'{name}_export.log'))
                with open(osp.join(work, 'logs', f'{name}_export.log')) as f:
                    print('    ' + '    '.join(
                        ln for ln in f if ln.startswith(('matched', '  '))),
                        end='')
            load = [f'load_from={exported}']
        ft_dir = osp.join(work, name, 'finetune')
        with Step(f'[{i + 2}c] fine-tune RetinaNet R18 from {name} init') as s:
            run_logged([py, 'tools/train.py', FINETUNE_CFG, '--work-dir',
                        ft_dir, '--cfg-options'] + ft_opts + load,
                       osp.join(work, 'logs', f'{name}_finetune.log'))
        row['finetune_s'] = s.seconds
        scalars = last_scalars(ft_dir)
        # CocoMetric logs nothing when the detector output no box above its
        # score threshold: that is an AP of 0, reported as such.
        row['mAP'] = scalars.get('coco/bbox_mAP', 0.0)
        row['mAP50'] = scalars.get('coco/bbox_mAP_50', 0.0)
        rows.append(row)

    table = format_table(rows)
    total = time.time() - t_start
    print('\n' + table)
    print(f'\ntotal wall time {total / 60:.1f} min; logs in {work}/logs')
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + f'\n\ntotal wall time {total / 60:.1f} min\n')
    return rows


def format_table(rows: List[dict]) -> str:
    head = ('| init | bbox mAP | mAP50 | pretrain loss vs chance | '
            'preparation time | pretrain time | fine-tune time |')
    lines = [head, '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f'| {r["init"]} | {r["mAP"]:.3f} | {r["mAP50"]:.3f} | '
            f'{r["learned"]} | {r.get("prepare_s", 0.0):.0f} s | '
            f'{r["pretrain_s"]:.0f} s | {r["finetune_s"]:.0f} s |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
