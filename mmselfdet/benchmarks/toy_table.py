# Copyright (c) mmselfdet contributors. All rights reserved.
"""The toy benchmark: what each method buys, measured with seeds.

``python tools/benchmarks/toy_table.py --preset cpu`` (the README's main
job, ``bash tools/quickstart.sh``) runs, on the built-in toy data:

1. the toy data and its fixed low-data split (10 % of ``train``);
2. per method: pretraining on ``unlabeled`` for the preset's number of
   optimizer steps (batch 32 everywhere: equal images seen), started from
   the random row's own init (mmdet's ResNet default) so every row starts
   from the same scheme; its final loss beside the chance level;
3. the export of the transfer set (backbone for RetinaNet; backbone + FPN +
   box head for the two-stage detector of object-level methods);
4. a k-NN probe of the frozen backbone on ``train`` -> ``val`` object
   crops; random-init backbones with several seeds give the floor;
5. fine-tuning per split x seed, COCO bbox AP on ``val``;
6. the table (markdown, CSV, PNG bar chart with error bars) with the
   verdicts *learned* (loss below chance by a margin and probe above the
   random floor) and *transfers* (mAP above random init by > 2 std).

Every unit is resumable (done when its ``result.json`` exists) and prints
progress. ``--part i/n`` runs a slice of the methods (the GPU preset in
two 10-minute runs); ``--report-only`` rebuilds the table from the files.
"""
import argparse
import json
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional

from mmselfdet.benchmarks import report
from mmselfdet.benchmarks.methods import METHODS, check_methods
from mmselfdet.benchmarks.presets import DETECTORS, PRESETS, Preset
from mmselfdet.benchmarks.units import (LAST_CPU, last_checkpoint,
                                        loss_vs_chance, run_finetune,
                                        pretrain_config, read_result,
                                        run_tool, scalar_records,
                                        write_result)

LOW_DATA = 'low_data'


def _cpu(folder: str) -> float:
    """CPU seconds of the unit's last tool run (its ``log.txt``)."""
    return LAST_CPU.get(osp.join(folder, 'log.txt'), float('nan'))


class Unit:
    """One resumable step: ``fn()`` returns the result dict written to
    ``folder/result.json``; it runs after every unit in ``deps``."""

    def __init__(self, name: str, folder: str, fn: Callable[[], dict],
                 deps: List['Unit'] = (),
                 covers: Optional[Callable[[dict], bool]] = None):
        self.name, self.folder, self.fn = name, folder, fn
        self.deps = list(deps)
        # does a finished result cover what the preset asks now (e.g. a
        # pipeline run with fewer seeds is run again, reusing its stages)
        self.covers = covers

    def done(self) -> bool:
        res = read_result(self.folder)
        if res is None:
            return False
        return self.covers is None or bool(self.covers(res))


def split_ann(data_root: str, split: str) -> str:
    if split == '100pct':
        return osp.join(data_root, 'annotations', 'train.json')
    return osp.join(data_root, LOW_DATA, f'train_{split}_seed0.json')


def plan(preset: Preset, work: str, data_root: str,
         methods: List[str], with_random: bool = True) -> List[Unit]:
    """Every unit of the preset for ``methods``, in dependency order."""
    units: List[Unit] = []
    inits = (['random'] if with_random else []) + list(methods)
    for init in inits:
        m = METHODS.get(init)
        exports: Dict[str, Optional[Unit]] = {}
        pre = None
        if m is not None and m.pipeline:
            units.append(_pipeline_unit(init, preset, work, data_root))
            continue
        if m is not None:
            deps = []
            if m.prepare:
                deps.append(_prepare_unit(init, m.prepare, work, data_root))
                units.append(deps[-1])
            pre = _pretrain_unit(init, m.config, preset, work, data_root,
                                 deps)
            units.append(pre)
        dets = [d for d in preset.detectors
                if d == 'retinanet' or m is None or m.object_level]
        for det in dets:
            if pre is not None:
                exports[det] = _export_unit(init, det, pre, work)
                units.append(exports[det])
        if 'retinanet' in dets:
            # the probe reads the backbone of the RetinaNet export
            if m is None:
                for s in preset.probe_seeds:
                    units.append(_probe_unit(init, None, work, data_root, s))
            else:
                units.append(_probe_unit(init, exports['retinanet'], work,
                                         data_root, 0))
        for det in dets:
            for split in preset.splits:
                for seed in preset.seeds:
                    units.append(_finetune_unit(init, det, split, seed,
                                                exports.get(det), preset,
                                                work, data_root))
    return units


def _prepare_unit(name, prepare, work, data_root) -> Unit:
    rel, template = prepare
    out = osp.join(data_root, rel)
    folder = osp.join(work, 'prepare', name)

    def fn():
        if osp.isfile(out):
            return dict(output=out, seconds=0.0, reused=True)
        cmd = [a.format(root=data_root, out=out) for a in template]
        sec = run_tool(cmd, osp.join(folder, 'log.txt'), threads=2)
        return dict(output=out, seconds=sec, cpu_s=_cpu(folder),
                    reused=False)

    return Unit(f'prepare {name}', folder, fn)


def _pretrain_unit(name, toy_cfg, preset, work, data_root, deps) -> Unit:
    folder = osp.join(work, 'pretrain', name)

    def fn():
        cfg = pretrain_config(toy_cfg, osp.join(folder, 'config.py'),
                              data_root, preset.pretrain_iters,
                              preset.fair_init)
        sec = run_tool(['tools/train.py', cfg, '--work-dir', folder],
                       osp.join(folder, 'log.txt'))
        res = loss_vs_chance(scalar_records(folder))
        return dict(res, seconds=sec, cpu_s=_cpu(folder),
                    checkpoint=last_checkpoint(folder),
                    config=cfg)

    return Unit(f'pretrain {name}', folder, fn, deps)


def _export_unit(name, det, pre: Unit, work) -> Unit:
    folder = osp.join(work, 'export', det, name)
    out = osp.join(folder, 'exported.pth')
    parts = ['backbone.'] if det == 'retinanet' else []

    def fn():
        ckpt = read_result(pre.folder)['checkpoint']
        cmd = ['tools/export_checkpoint.py', ckpt, out,
               '--downstream-config', DETECTORS[det]]
        if parts:
            cmd += ['--parts'] + parts
        sec = run_tool(cmd, osp.join(folder, 'log.txt'))
        return dict(exported=out, seconds=sec, cpu_s=_cpu(folder))

    return Unit(f'export {name} -> {det}', folder, fn, [pre])


def _probe_unit(name, export: Optional[Unit], work, data_root,
                seed: int) -> Unit:
    folder = osp.join(work, 'probe', f'{name}_s{seed}')

    def fn():
        ckpt = 'random' if export is None else \
            read_result(export.folder)['exported']
        out = osp.join(folder, 'probe.json')
        ann = osp.join(data_root, 'annotations')
        sec = run_tool([
            'tools/benchmarks/probe.py', ckpt, '--depth', '18',
            '--zero-init-residual', 'true', '--train-ann',
            osp.join(ann, 'train.json'), '--val-ann',
            osp.join(ann, 'val.json'), '--mode', 'crops', '--seed',
            str(seed), '--out', out
        ], osp.join(folder, 'log.txt'))
        with open(out) as f:
            probe = json.load(f)
        return dict(knn=report.probe_score(probe),
                    linear=report.probe_score(probe, 'linear'), seconds=sec,
                    cpu_s=_cpu(folder),
                    raw=probe)

    return Unit(f'probe {name} (seed {seed})', folder, fn,
                [] if export is None else [export])


def _finetune_unit(name, det, split, seed, export: Optional[Unit], preset,
                   work, data_root) -> Unit:
    folder = osp.join(work, 'finetune', det, split, f'{name}_s{seed}')

    def fn():
        load = None if export is None else \
            read_result(export.folder)['exported']
        return run_finetune(folder, DETECTORS[det], data_root,
                            split_ann(data_root, split),
                            preset.finetune_iters[split], seed, load)

    return Unit(f'fine-tune {det} {split} from {name} (seed {seed})', folder,
                fn, [] if export is None else [export])


def _pipeline_unit(name, preset, work, data_root) -> Unit:
    """The DETR pretraining: its own stages (A-D) and detector (Deformable
    DETR fine-tuned on all of toy ``train``, from the export and from random
    init, once per seed), in its own toy data folder."""
    folder = osp.join(work, 'pipeline', name)

    def fn():
        run = osp.join(folder, 'run')
        cmd = ['tools/detr_pretrain/run_toy_pipeline.py', '--finetune',
               '--work-dir', run, '--finetune-iters',
               str(preset.finetune_iters['100pct']), '--finetune-seeds'
               ] + [str(s) for s in preset.seeds]
        if preset.pretrain_iters:
            cmd += ['--pretrain-iters', str(preset.pretrain_iters)]
        sec = run_tool(cmd, osp.join(folder, 'log.txt'))
        with open(osp.join(run, 'results.json')) as f:
            return dict(json.load(f), seconds=sec, cpu_s=_cpu(folder))

    def covers(res: dict) -> bool:
        have = {r.get('seed') for r in res.get('finetune', [])}
        return (set(preset.seeds) <= have and res.get('finetune_iters')
                == preset.finetune_iters['100pct'])

    return Unit(f'DETR pretraining pipeline {name}', folder, fn,
                covers=covers)


def run_units(units: List[Unit], jobs: int = 1) -> None:
    """Run every unfinished unit once its dependencies are done, up to
    ``jobs`` at a time, printing progress."""
    # the long chains first: preparation and pretraining gate the rest;
    # then the RetinaNet rows of every method before the (3x dearer)
    # two-stage fine-tunes, so an interrupted run has whole rows
    def order(u: Unit) -> int:
        if u.name.startswith(('prepare', 'pretrain')):
            return 0
        return 2 if 'two-stage' in u.name else 1

    todo = sorted((u for u in units if not u.done()), key=order)
    print(f'{len(units) - len(todo)} of {len(units)} units already done; '
          f'{len(todo)} to run', flush=True)
    t0, finished = time.time(), 0
    failed: List[str] = []

    def execute(u: Unit):
        print(f'  start  {u.name}', flush=True)
        t = time.time()
        res = u.fn()
        write_result(u.folder, res)
        return u, time.time() - t

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running = {}
        while todo or running:
            for u in list(todo):
                if len(running) >= jobs:
                    break
                if any(not d.done() for d in u.deps):
                    if any(d.name in failed for d in u.deps):
                        todo.remove(u)
                        failed.append(u.name)
                    continue
                todo.remove(u)
                running[pool.submit(execute, u)] = u
            if not running:
                break
            done = [f for f in running if f.done()]
            if not done:
                time.sleep(0.5)
                continue
            for f in done:
                u = running.pop(f)
                try:
                    _, sec = f.result()
                    finished += 1
                    left = len(todo) + len(running)
                    print(f'  done   {u.name} in {sec:.0f} s ({finished} '
                          f'run, {left} left, {(time.time() - t0) / 60:.1f} '
                          'min so far)', flush=True)
                except Exception as e:  # reported, the rest goes on
                    failed.append(u.name)
                    print(f'  FAILED {u.name}: {e}', flush=True)
    if failed:
        raise RuntimeError(f'{len(failed)} unit(s) failed: {failed}; rerun '
                           'the same command to retry them (finished units '
                           'are kept)')


def prepare_data(data_root: str, preset: Preset, seed: int = 0) -> None:
    """Toy data (generated once) and the fixed low-data split files."""
    from mmselfdet.datasets.toy import generate_toy_dataset
    u, t, v = preset.toy_size
    generate_toy_dataset(data_root, seed=seed, progress=True,
                         num_unlabeled=u, num_train=t, num_val=v)
    low = osp.join(data_root, LOW_DATA)
    if any(s != '100pct' for s in preset.splits) and not osp.isfile(
            osp.join(low, 'train_10pct_seed0.json')):
        run_tool(['tools/make_low_data_splits.py', 'coco',
                  osp.join(data_root, 'annotations', 'train.json'), low],
                 osp.join(low, 'log.txt'))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog='tools/benchmarks/toy_table.py',
        description='Toy benchmark: pretrain, probe, low-data fine-tuning '
        'with seeds, table.')
    p.add_argument('--preset', default='cpu',
                   choices=sorted(PRESETS) + ['paper'])
    p.add_argument('--methods', nargs='+',
                   help='override the preset\'s methods')
    p.add_argument('--work-dir', default=None,
                   help='default work_dirs/toy_table_<preset>')
    p.add_argument('--data-root', default='data/toy')
    p.add_argument('--part', default='1/1',
                   help='i/n: run the i-th of n slices of the methods '
                   '(random init goes with part 1)')
    p.add_argument('--jobs', type=int, help='units side by side')
    p.add_argument('--pretrain-iters', type=int)
    p.add_argument('--finetune-iters', type=int,
                   help='override the fine-tuning steps of every split')
    p.add_argument('--seeds', type=int, nargs='+')
    p.add_argument('--probe-seeds', type=int, nargs='+')
    p.add_argument('--splits', nargs='+', choices=['10pct', '100pct'])
    p.add_argument('--toy-size', nargs=3, type=int,
                   metavar=('UNLABELED', 'TRAIN', 'VAL'))
    p.add_argument('--no-random-init', action='store_true')
    p.add_argument('--report-only', action='store_true',
                   help='only rebuild the table from finished units')
    p.add_argument('--dry-run', action='store_true',
                   help='list the units and exit')
    args = p.parse_args(argv)
    if args.methods:
        errors = check_methods(args.methods)
        if errors:
            p.error('; '.join(errors))
    try:
        i, n = (int(x) for x in args.part.split('/'))
        assert 1 <= i <= n
    except (ValueError, AssertionError):
        p.error(f'--part must be i/n with 1 <= i <= n, got {args.part!r}')
    args.part_i, args.part_n = i, n
    return args


def resolve(args) -> Preset:
    """The preset with the command line's overrides."""
    preset = PRESETS[args.preset]
    kw = {}
    if args.methods:
        kw['methods'] = tuple(m for m in args.methods if m != 'random')
    if args.pretrain_iters:
        kw['pretrain_iters'] = args.pretrain_iters
    if args.finetune_iters:
        kw['finetune_iters'] = {s: args.finetune_iters
                                for s in ('10pct', '100pct')}
    for key in ('seeds', 'probe_seeds', 'splits', 'toy_size', 'jobs'):
        if getattr(args, key):
            kw[key] = tuple(getattr(args, key)) if key != 'jobs' \
                else args.jobs
    return preset.with_(**kw)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    if args.preset == 'paper':
        print(report.paper_commands())
        return []
    preset = resolve(args)
    work = osp.abspath(args.work_dir or f'work_dirs/toy_table_{args.preset}')
    data_root = osp.abspath(args.data_root)
    methods = list(preset.methods)[args.part_i - 1::args.part_n]
    with_random = not args.no_random_init and args.part_i == 1
    units = plan(preset, work, data_root, methods, with_random)
    if args.dry_run:
        for u in units:
            print(('done  ' if u.done() else 'todo  ') + u.name)
        return []
    t0 = time.time()
    if not args.report_only:
        print(f'==> toy benchmark, preset {args.preset}: {preset}',
              flush=True)
        prepare_data(data_root, preset)
        run_units(units, preset.jobs)
    rows = report.write_all(work, preset, ['random'] + list(preset.methods),
                            args.preset, time.time() - t0)
    return rows


if __name__ == '__main__':
    main()
