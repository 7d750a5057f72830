# Copyright (c) mmselfdet contributors. All rights reserved.
"""The main job (mmselfdet/quickstart.py) end to end on a tiny budget: toy
data -> MoCo v2 pretraining -> export -> RetinaNet fine-tuning from the
export and from random init -> table."""
import json
import os
import os.path as osp

import pytest

from mmselfdet import quickstart


def test_quickstart_tiny_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    work = str(tmp_path / 'qs')
    rows = quickstart.main([
        '--work-dir', work, '--data-root', str(tmp_path / 'toy'),
        '--pretrain-iters', '2', '--finetune-epochs', '1',
        '--toy-size', '64', '16', '8'
    ])
    assert [r['init'] for r in rows] == ['random', 'mocov2']
    for r in rows:
        assert 0.0 <= r['mAP'] <= 1.0 and 0.0 <= r['mAP50'] <= 1.0
        assert r['finetune_s'] > 0
    assert rows[1]['pretrain_s'] > 0
    assert ' vs ' in rows[1]['learned']  # loss vs chance level
    out = capsys.readouterr().out
    assert '| init | bbox mAP |' in out and '| mocov2 |' in out
    assert osp.isfile(osp.join(work, 'results.md'))
    assert osp.isfile(osp.join(work, 'mocov2', 'exported.pth'))
    assert os.listdir(osp.join(work, 'logs'))


def test_quickstart_rejects_unknown_method(capsys):
    with pytest.raises(SystemExit):
        quickstart.parse_args(['--methods', 'mocov9'])
    assert 'mocov9' in capsys.readouterr().err


def test_pretrain_verdict_sums_weighted_chance_levels(tmp_path):
    d = tmp_path / 'run' / 'vis_data'
    d.mkdir(parents=True)
    recs = [dict(loss=3.0, a_contrast_chance=1.0, b_contrast_chance=2.5),
            dict(loss=3.2, a_contrast_chance=1.0, b_contrast_chance=2.5)]
    (d / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in recs))
    assert quickstart.pretrain_verdict(str(tmp_path)) == \
        '3.20 vs 3.50 (learned)'
    (d / 'scalars.json').write_text(json.dumps(dict(loss=0.5, byol_cos=0.9)))
    assert 'no chance level' in quickstart.pretrain_verdict(str(tmp_path))


def test_dataset_key_reaches_into_wrappers():
    assert quickstart.dataset_key(quickstart.METHODS['insloc']) == \
        'train_dataloader.dataset.dataset'
    assert quickstart.dataset_key(quickstart.METHODS['mocov2']) == \
        'train_dataloader.dataset'


def test_soco_oracle_row_is_named_gtboxes(capsys):
    """The toy SoCo run on ground-truth boxes is the oracle row: its method
    and config names say so, and the old name ``soco`` is refused with a
    message that gives the new one."""
    cfg = quickstart.METHODS['soco-gtboxes']
    assert osp.basename(cfg) == 'soco-gtboxes_r18_fpn_1xb32-150it_toy.py'
    assert osp.isfile(osp.join(quickstart.REPO, cfg))
    assert 'soco' not in quickstart.METHODS
    assert quickstart.parse_args(['--methods', 'soco-gtboxes']).methods == [
        'soco-gtboxes']
    with pytest.raises(SystemExit):
        quickstart.parse_args(['--methods', 'soco-ss', 'soco'])
    err = capsys.readouterr().err
    assert "'soco' is now called 'soco-gtboxes'" in err
    assert 'ground-truth' in err
