# Copyright (c) mmselfdet contributors. All rights reserved.
"""The one-command toy pipeline (tools/detr_pretrain/run_toy_pipeline.py):
stages A-D as subprocesses on a tiny toy set, the recall table, reuse."""
import json
import os.path as osp
import re

import pytest

from ..utils import load_tool


def test_toy_pipeline_runs_stages_a_to_d(tmp_path, capsys):
    tool = load_tool('tools/detr_pretrain/run_toy_pipeline.py')
    wd = str(tmp_path / 'simdetr_toy')
    args = ['--work-dir', wd, '--toy-size', '8', '4', '4',
            '--pretrain-iters', '4', '--rounds', '2', '--num-classes', '3',
            '--boxes-per-img', '5']
    tool.main(args)
    assert osp.isfile(osp.join(wd, 'pretrain', 'iter_4.pth'))
    assert osp.isfile(osp.join(wd, 'pretrain', 'self_training',
                               'round_01.json'))
    with open(osp.join(wd, 'results.md')) as f:
        table = f.read()
    rows = [r for r in table.splitlines() if r.startswith('| ')][1:]
    names = [r.split('|')[1].strip() for r in rows]
    assert names == ['stage A, best 5 per image', 'round 0 (stage B, K=3)',
                     'round 1 (self-training)']
    for r in rows:
        ar10, ar30, per_img = (float(v) for v in r.split('|')[2:5])
        assert 0 <= ar10 <= ar30 <= 1 and per_img > 0
    assert float(rows[0].split('|')[4]) <= 5  # cut to --boxes-per-img
    # a second call reuses every finished step
    capsys.readouterr()
    tool.main(args)
    out = capsys.readouterr().out
    assert re.search(r'stages C\+D.*reusing', out), out
    # stage-A shards of other settings in the work dir (as left by an
    # older version of the pipeline): stopped, with the pipeline's own way
    # out (--fresh), not make_proposals' --overwrite
    settings = osp.join(wd, 'proposals', 'unlabeled.shards', 'settings.json')
    with open(settings) as f:
        old = json.load(f)
    old['img_scale'] = [128, 128]
    with open(settings, 'w') as f:
        json.dump(old, f)
    with pytest.raises(SystemExit, match=r'(?s)img_scale.*--fresh'):
        tool.main(args)


def test_toy_data_of_other_size_is_not_reused(tmp_path):
    tool = load_tool('tools/detr_pretrain/run_toy_pipeline.py')
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'meta.json').write_text(
        '{"params": {"seed": 0, "num_unlabeled": 1000, "num_train": 200, '
        '"num_val": 100}}')
    with pytest.raises(SystemExit, match=r"num_unlabeled.*1000, 400.*--fresh"):
        tool.main(['--work-dir', str(tmp_path)])


def test_finetune_table_lists_every_evaluation():
    tool = load_tool('tools/detr_pretrain/run_toy_pipeline.py')
    table = tool.finetune_table(
        [('SimDETR', [(0.01, 0.05), (0.02, 0.07)], 12.3),
         ('random init', [(0.005, 0.02)], None)], 250)
    head, rule, a, b = table.splitlines()
    assert head == ('| init | mAP / mAP50 at 250 it | mAP / mAP50 at 500 it '
                    '| fine-tune time (s) |')
    assert rule == '|---|---|---|---|'
    assert a == '| SimDETR | 0.010 / 0.050 | 0.020 / 0.070 | 12 |'
    assert b == '| random init | 0.005 / 0.020 | - | earlier run |'
