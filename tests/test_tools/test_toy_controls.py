# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/toy_controls.py ``sweep``: per checkpoint, the loss is
the mean of the records logged in the 40 steps before it, beside the chance
level; every checkpoint is exported and probed, the last one fine-tuned per
seed; the result lands in ``sweep/<method>/result.json``."""
import os
import os.path as osp

import pytest

from mmselfdet.benchmarks.units import read_result

from ..utils import load_tool


@pytest.fixture()
def tool():
    return load_tool('tools/benchmarks/toy_controls.py')


def test_sweep_rows(tool, tmp_path, monkeypatch):
    work = str(tmp_path)
    ckpts = {k: f'{work}/sweep_mocov2/iter_{k}.pth' for k in (300, 600)}
    recs = [dict(step=s, loss=float(s), contrast_chance=5.5)
            for s in range(20, 601, 20)]
    calls = []

    def run_tool(cmd, log):
        out = cmd[2]  # export_checkpoint.py CKPT OUT ...
        os.makedirs(osp.dirname(out), exist_ok=True)
        open(out, 'w').close()
        calls.append(cmd[1])

    monkeypatch.setattr(tool, 'sweep_checkpoints', lambda w, r, m: ckpts)
    monkeypatch.setattr(tool, 'scalar_records', lambda folder: recs)
    monkeypatch.setattr(tool, 'run_tool', run_tool)
    monkeypatch.setattr(tool, 'probe', lambda w, name, ckpt, extra: dict(
        knn=float(name.split('_')[-1]), linear=1.0, collapse={}))
    monkeypatch.setattr(tool, 'finetune', lambda w, r, name, s, load: dict(
        mAP=0.01 * s, load=load, name=name))
    tool.sweep(work, 'root', 'mocov2')
    res = read_result(f'{work}/sweep/mocov2')
    rows = {r['step']: r for r in res['rows']}
    # steps 280 and 300 (resp. 580, 600) are the two records before each
    assert rows[300]['loss'] == pytest.approx(290.0)
    assert rows[600]['loss'] == pytest.approx(590.0)
    assert rows[300]['chance'] == 5.5 and rows[600]['knn'] == 600.0
    assert calls == [ckpts[300], ckpts[600]]  # every checkpoint exported
    assert [f['mAP'] for f in res['finetune']] == [0.0, 0.01, 0.02]
    assert all(f['name'] == 'sweep_mocov2_600' and
               f['load'].endswith('sweep_export/mocov2/600/exported.pth')
               for f in res['finetune'])
