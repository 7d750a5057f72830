# Copyright (c) mmselfdet contributors. All rights reserved.
"""The toy benchmark (tools/benchmarks/toy_table.py, the README's main job):
verdicts that can fail, aggregation over seeds, resume, the derived
configs, the plan of each preset, and one tiny end-to-end run."""
import json
import os
import os.path as osp
import statistics

import pytest
from mmengine.config import Config

from mmselfdet import quickstart
from mmselfdet.benchmarks import report, toy_table
from mmselfdet.benchmarks.methods import METHODS
from mmselfdet.benchmarks.presets import PRESETS, Preset
from mmselfdet.benchmarks.units import (REPO, finetune_config,
                                        loss_vs_chance, pretrain_config,
                                        read_result, write_result)


def test_learned_needs_a_margin_below_chance_and_a_probe_above_random():
    floor = (0.50, 0.02)  # random-init probe: mean, std over init seeds
    row = dict(init='mocov2', probe=(0.60, 0.0),
               pretrain=dict(loss=5.51, chance=5.55))
    # the old table called 5.51 vs 5.55 "learned": not any more
    assert report.learned(row, floor) == \
        'learned (probe above random; loss at chance)'
    row['probe'] = (0.51, 0.0)
    assert report.learned(row, floor) == \
        'did not learn (probe not above random, loss at chance)'
    row['pretrain'] = dict(loss=5.55 * (1 - report.LOSS_MARGIN) - 1e-3,
                           chance=5.55)
    # pretext learned, features no better than random for objects
    assert report.learned(row, floor).startswith(
        'learned its pretext, not object features')
    row['probe'] = (0.50 + 2 * 0.02 + 1e-3, 0.0)  # beyond 2 std of random
    assert report.learned(row, floor) == 'learned'
    row['probe'] = (0.50 + 2 * 0.02 - 1e-3, 0.0)  # within 2 std
    assert report.learned(row, floor) != 'learned'
    # no chance level (BYOL): the probe alone decides
    row = dict(init='byol', probe=(0.6, 0.0), pretrain=dict(loss=0.4,
                                                            chance=0.0))
    assert report.learned(row, floor) == 'learned'
    assert report.learned(dict(row, probe=(0.51, 0.0)), floor) == \
        'did not learn (probe not above random)'
    # no probe: the loss alone, said so
    assert report.learned(dict(row, probe=None, pretrain=dict(
        loss=4.0, chance=5.55)), floor) == 'learned (loss; no probe)'


def test_transfer_verdict_uses_two_std_of_the_noisier_row():
    base = (0.10, 0.01)
    assert report.compare((0.121, 0.005), base) == 'transfers'
    assert report.compare((0.119, 0.005), base) == 'no difference'
    assert report.compare((0.13, 0.02), base) == 'no difference'  # 2x0.02
    assert report.compare((0.079, 0.0), base) == 'hurts'


def test_loss_vs_chance_averages_the_last_tenth():
    recs = [dict(loss=float(i), contrast_chance=5.55) for i in range(20)]
    recs.insert(5, dict(lr=0.1))  # non-loss records are ignored
    got = loss_vs_chance(recs)
    assert got['loss'] == pytest.approx((18 + 19) / 2)
    assert got['chance'] == pytest.approx(5.55)
    # weighted chance levels of several losses add up
    recs = [dict(loss=1.0, a_contrast_chance=2.0, b_contrast_chance=3.0)]
    assert loss_vs_chance(recs)['chance'] == pytest.approx(5.0)


def _fake_results(work, preset):
    vals = {'random': [0.10, 0.12, 0.14], 'mocov2': [0.20, 0.22, 0.24]}
    for init, maps in vals.items():
        for seed, v in zip(preset.seeds, maps):
            write_result(osp.join(work, 'finetune', 'retinanet', '10pct',
                                  f'{init}_s{seed}'),
                         dict(mAP=v, mAP50=2 * v, seconds=1.0))
    for s, acc in zip(preset.probe_seeds, [0.40, 0.42, 0.44]):
        write_result(osp.join(work, 'probe', f'random_s{s}'),
                     dict(knn=acc, linear=acc + 0.1))
    write_result(osp.join(work, 'probe', 'mocov2_s0'),
                 dict(knn=0.7, linear=0.8))
    write_result(osp.join(work, 'pretrain', 'mocov2'),
                 dict(loss=4.0, chance=5.55, seconds=3.0, cpu_s=2.5))


def test_table_aggregates_seeds_and_writes_md_csv_png(tmp_path):
    preset = Preset(methods=('mocov2', ))
    work = str(tmp_path)
    _fake_results(work, preset)
    rows = report.write_all(work, preset, ['random', 'mocov2'], 'cpu', 1.0)
    by = {r['init']: r for r in rows}
    sd = statistics.stdev([0.20, 0.22, 0.24])
    assert by['mocov2']['mAP'] == pytest.approx((0.22, sd))
    assert by['random']['probe'] == pytest.approx((0.42, 0.02))
    assert by['random']['linear'] == pytest.approx((0.52, 0.02))
    assert report.probe_score(dict(metric='top1', knn=dict(top1=41.5),
                                   linear=dict(top1=50.0)), 'linear') == 50.0
    assert by['mocov2']['learned'] == 'learned'
    assert by['mocov2']['transfers'] == 'transfers'
    md = open(osp.join(work, 'results.md')).read()
    assert '| MoCo v2 | retinanet | 10pct | 0.220 ± 0.020 |' in md
    assert '4.00 vs 5.55' in md
    assert '| 4.00 vs 5.55 | 0.7 | 0.8 |' in md  # one probe: no ± shown
    # 6 fine-tunes of 1 s + the pretraining's 3 s; CPU time only where
    # recorded
    assert '7 units: 0.1 min of unit wall time, 0.0 CPU-min (of the 1 ' \
        'units' in md
    csv_lines = open(osp.join(work, 'results.csv')).read().splitlines()
    assert csv_lines[0].startswith('init,detector,split,n,mAP_mean')
    assert csv_lines[2].startswith('mocov2,retinanet,10pct,3,0.22')
    assert os.path.getsize(osp.join(work, 'results.png')) > 1000


def test_own_pipeline_rows_compare_with_their_own_random_rows(tmp_path):
    """The DETR pretraining fine-tunes its own detector from its export and
    from random init per seed: its verdict is against that random row."""
    preset = Preset(methods=('simdetr', ))
    work = str(tmp_path)
    recs = [dict(init=i, seed=s, mAP=v, mAP50=v, seconds=1.0)
            for i, vals in (('simdetr', [0.30, 0.31, 0.32]),
                            ('random', [0.10, 0.11, 0.12]))
            for s, v in enumerate(vals)]
    write_result(osp.join(work, 'pipeline', 'simdetr'),
                 dict(finetune=recs, seconds=5.0))
    rows = report.collect(work, preset, ['random', 'simdetr'])
    by = {r['init']: r for r in rows}
    assert by['simdetr']['detector'] == by['random']['detector'] == \
        'deformable-detr (own)'
    assert by['simdetr']['mAP'] == pytest.approx((0.31, 0.01))
    assert by['simdetr']['transfers'] == 'transfers'
    assert by['simdetr']['learned'] == 'unknown'  # no chance, no probe


def test_pipeline_run_with_fewer_seeds_is_not_done(tmp_path):
    """A DETR pipeline result that lacks a seed (or has another budget) the
    preset asks for is run again (its own stages are reused there)."""
    preset = Preset(methods=('simdetr', ), seeds=(0, 1))
    unit = toy_table.plan(preset, str(tmp_path), str(tmp_path / 'd'),
                          ['simdetr'], with_random=False)[0]
    ft = preset.finetune_iters['100pct']
    recs = [dict(init=i, seed=0, mAP=0.1, mAP50=0.1, seconds=1.0)
            for i in ('simdetr', 'random')]
    write_result(unit.folder, dict(finetune=recs, finetune_iters=ft))
    assert not unit.done()
    recs += [dict(r, seed=1) for r in recs]
    write_result(unit.folder, dict(finetune=recs, finetune_iters=ft + 1))
    assert not unit.done()
    write_result(unit.folder, dict(finetune=recs, finetune_iters=ft))
    assert unit.done()


def test_finished_units_are_not_rerun_and_a_failure_spares_the_rest(
        tmp_path):
    calls = []

    def make(name, deps=(), fail=False):
        def fn():
            calls.append(name)
            if fail:
                raise ValueError('boom')
            return dict(name=name)
        return toy_table.Unit(name, str(tmp_path / name), fn, list(deps))

    a = make('a')
    b = make('b', fail=True)
    c = make('c', deps=[b])  # never runs: its dependency failed
    d = make('d', deps=[a])
    write_result(a.folder, dict(name='a'))  # finished before
    with pytest.raises(RuntimeError, match=r"'b'.*'c'"):
        toy_table.run_units([a, b, c, d], jobs=2)
    assert sorted(calls) == ['b', 'd']
    assert read_result(d.folder) == dict(name='d')
    assert read_result(c.folder) is None
    calls.clear()
    toy_table.run_units([a, d], jobs=1)  # everything done: nothing runs
    assert calls == []


def test_two_stage_units_run_after_every_retinanet_unit(tmp_path):
    ran = []

    def make(name, deps=()):
        return toy_table.Unit(name, str(tmp_path / name),
                              lambda: ran.append(name) or {}, list(deps))

    pre = make('pretrain a')
    units = [make('fine-tune two-stage 10pct from a (seed 0)', [pre]),
             make('fine-tune retinanet 10pct from a (seed 0)', [pre]), pre,
             make('fine-tune retinanet 10pct from random (seed 0)')]
    toy_table.run_units(units, jobs=1)
    assert ran[0] == 'pretrain a'
    assert ran[-1].startswith('fine-tune two-stage')


def test_plan_of_presets_and_parts(tmp_path):
    work, root = str(tmp_path / 'w'), str(tmp_path / 'd')
    cpu = PRESETS['cpu']
    names = [u.name for u in toy_table.plan(cpu, work, root,
                                            list(cpu.methods))]
    for init in ['random'] + list(cpu.methods):
        for s in cpu.seeds:
            assert f'fine-tune retinanet 10pct from {init} (seed {s})' in \
                names
    assert sum(n.startswith('probe random') for n in names) == \
        len(cpu.probe_seeds)
    # the two-stage detector only for object-level methods and random
    full = PRESETS['cpu-all']
    units = toy_table.plan(full, work, root, list(full.methods))
    two = {u.name.split(' from ')[1].split(' ')[0] for u in units
           if u.name.startswith('fine-tune two-stage')}
    assert two == {'random'} | {m for m in full.methods
                                if METHODS[m].object_level}
    # a fine-tune of a method waits for its export, which waits for its
    # pretraining
    ft = next(u for u in units if u.name.startswith(
        'fine-tune two-stage 10pct from insloc'))
    assert ft.deps[0].name == 'export insloc -> two-stage'
    assert ft.deps[0].deps[0].name == 'pretrain insloc'
    # --part i/n slices the methods: every method in exactly one part
    seen = []
    for i in (1, 2, 3):
        args = toy_table.parse_args(['--preset', 'gpu', '--part', f'{i}/3'])
        seen += list(PRESETS['gpu'].methods)[i - 1::3]
        assert args.part_i == i
    assert sorted(seen) == sorted(PRESETS['gpu'].methods)
    with pytest.raises(SystemExit):
        toy_table.parse_args(['--part', '3/2'])


def test_derived_configs_load_and_say_what_they_change(tmp_path):
    out = finetune_config('configs/benchmarks/retinanet_r18_fpn_1xb8-12e_'
                          'toy.py', str(tmp_path / 'ft.py'), '/data/toy',
                          '/data/toy/low_data/x.json', 180, 2,
                          load_from='/w/exported.pth')
    cfg = Config.fromfile(out)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=180,
                                 val_interval=180)
    assert cfg.param_scheduler[1].milestones == [120, 165]
    assert cfg.randomness.seed == 2 and cfg.load_from == '/w/exported.pth'
    assert cfg.train_dataloader.dataset.ann_file == \
        '/data/toy/low_data/x.json'
    # no epoch ends: mmengine's IterBasedTrainLoop sleeps 2 s at each one
    sampler = cfg.train_dataloader.sampler
    assert (sampler.type, sampler.shuffle) == ('InfiniteSampler', True)
    assert cfg.val_evaluator.ann_file == '/data/toy/annotations/val.json'
    out = pretrain_config(METHODS['insloc'].config, str(tmp_path / 'p.py'),
                          '/data/toy', 300, fair_init=True)
    cfg = Config.fromfile(out)
    assert cfg.train_cfg.max_iters == 300
    assert cfg.model.backbone.zero_init_residual is True
    assert cfg.train_dataloader.dataset.dataset.data_root == '/data/toy/'
    sched = cfg.param_scheduler[-1]
    assert sched.get('T_max', sched.get('end')) == 300


def test_method_table_points_at_real_configs():
    for name, m in METHODS.items():
        assert osp.isfile(osp.join(REPO, m.config)), name
    assert quickstart.METHODS is METHODS


def test_unknown_and_renamed_methods_are_refused(capsys):
    with pytest.raises(SystemExit):
        toy_table.parse_args(['--methods', 'mocov9'])
    assert 'mocov9' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        toy_table.parse_args(['--methods', 'soco'])
    assert "now called 'soco-gtboxes'" in capsys.readouterr().err


def test_paper_preset_prints_cluster_commands(capsys):
    toy_table.main(['--preset', 'paper'])
    out = capsys.readouterr().out
    assert 'bash tools/dist_train.sh configs/mocov2/' in out
    assert 'tools/slurm_train.sh' in out and '_toy' not in out


def test_tiny_end_to_end(tmp_path, monkeypatch):
    """Toy data -> MoCo v2 (2 steps) -> export -> probe -> 2-step fine-tune
    from the export and from random init -> table; a rerun redoes
    nothing."""
    work = str(tmp_path / 'qs')
    argv = ['--work-dir', work, '--data-root', str(tmp_path / 'toy'),
            '--methods', 'mocov2', '--pretrain-iters', '2',
            '--finetune-iters', '2', '--seeds', '0', '--probe-seeds', '0',
            '--toy-size', '40', '20', '8', '--jobs', '2']
    rows = quickstart.main(argv)
    assert [r['init'] for r in rows] == ['random', 'mocov2']
    for r in rows:
        assert 0.0 <= r['mAP'][0] <= 1.0 and r['n'] == 1
    assert rows[1]['pretrain']['chance'] > 0
    assert osp.isfile(osp.join(work, 'export', 'retinanet', 'mocov2',
                               'exported.pth'))
    assert osp.isfile(osp.join(work, 'results.png'))
    stamp = os.path.getmtime(osp.join(work, 'pretrain', 'mocov2',
                                      'result.json'))
    quickstart.main(argv)
    assert os.path.getmtime(osp.join(work, 'pretrain', 'mocov2',
                                     'result.json')) == stamp
    with open(osp.join(work, 'results.json')) as f:
        assert len(json.load(f)) == 2
