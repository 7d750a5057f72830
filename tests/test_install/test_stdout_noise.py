# Copyright (c) mmselfdet contributors. All rights reserved.
"""Tools read another process's results from files, not from its stdout:
with onedl-mmdetection, importing mmdet prints lines to stdout ('Could not
import OneDL...', 'Line NMS is not compiled...'). A ``sitecustomize`` that
prints such lines at start and exit of every child process stands in for
them here."""
import json
import os
import os.path as osp
from types import SimpleNamespace

import pytest

from mmselfdet.datasets.proposals import save_proposal_file

from ..utils import load_tool

NOISE = '''import atexit
print('Could not import OneDL. Skipping OneDL datasets.')
atexit.register(print, 'Line NMS is not compiled. Most likely ...')
'''


@pytest.fixture
def noisy_children(tmp_path, monkeypatch):
    """Every Python child process prints import-time lines to stdout."""
    d = tmp_path / 'noise'
    d.mkdir()
    (d / 'sitecustomize.py').write_text(NOISE)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        p for p in (str(d), os.environ.get('PYTHONPATH')) if p))


def test_soco_benchmark_reads_recall_from_the_json(noisy_children, toy_root,
                                                   tmp_path):
    """Proposals = the ground-truth boxes of every other val image: AR at
    every IoU threshold is the share of ground-truth boxes in those images
    (the others count as misses, and eval_proposals prints a note after its
    table)."""
    bench = load_tool('tools/benchmarks/soco_vs_e2e.py')
    gt_file = osp.join(toy_root, 'annotations', 'val.json')
    with open(gt_file) as f:
        gt = json.load(f)
    covered = {img['id'] for img in gt['images'][::2]}
    boxes = {i: [] for i in covered}
    for a in gt['annotations']:
        if a['image_id'] in covered:
            x, y, w, h = a['bbox']
            boxes[a['image_id']].append([x, y, x + w, y + h])
    props = str(tmp_path / 'props.json')
    save_proposal_file(props, [{k: im[k] for k in ('id', 'file_name',
                                                   'width', 'height')}
                               for im in gt['images']],
                       {i: dict(bboxes=b) for i, b in boxes.items()})
    expect = sum(len(b) for b in boxes.values()) / len(gt['annotations'])
    assert 0 < expect < 1
    ar10, ar100 = bench._ar(props, gt_file)
    assert ar10 == pytest.approx(expect, abs=1e-12)
    assert ar100 == pytest.approx(expect, abs=1e-12)


def test_soco_benchmark_memory_worker_result_travels_in_a_file(
        tmp_path, monkeypatch):
    bench = load_tool('tools/benchmarks/soco_vs_e2e.py')
    # the worker side writes its number to --memory-out
    monkeypatch.setattr(bench, 'step_memory_cpu', lambda *a: 123.25)
    out = str(tmp_path / 'm.json')
    assert bench.main(['--memory-worker', 'SoCo', '--memory-out', out]) == 0
    with open(out) as f:
        assert json.load(f) == {'peak_mb': 123.25}

    # the parent side takes the file's number, whatever stdout holds
    def fake_run(cmd):
        path = cmd[cmd.index('--memory-out') + 1]
        name = cmd[cmd.index('--memory-worker') + 1]
        with open(path, 'w') as f:
            json.dump(dict(peak_mb=len(name) * 100.0), f)
        return 'Line NMS is not compiled.\n'

    def fake_times(*a):
        return {n: dict(median_s=1.0, min_s=1.0, max_s=1.0, cpu_s=1.0)
                for n in bench.STEP_METHODS}

    monkeypatch.setattr(bench, '_run', fake_run)
    monkeypatch.setattr(bench, 'step_times', fake_times)
    table = bench.part_step(SimpleNamespace(
        device='cpu', data_root='x', batch_size=2, iters=1, warmup=0))
    for name in bench.STEP_METHODS:
        row = next(ln for ln in table.splitlines()
                   if ln.startswith(f'| {name} |'))
        assert row.split('|')[5].strip() == f'{len(name) * 100:.0f}', row
