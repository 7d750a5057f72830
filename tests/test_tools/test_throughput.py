# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/throughput.py: the step split and the rates are the
arithmetic of the timed sections; a tiny CPU run of the GPU-augmentation
toy config trains, times every section and compares to its ceiling."""
import importlib.util
import json
import os.path as osp

import pytest

from ..utils import REPO

CFG = osp.join(REPO, 'configs/mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'throughput', osp.join(REPO, 'tools', 'benchmarks', 'throughput.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_summary_splits_the_step_and_counts_images(tool):
    wall = [dict(step=0.1, data_wait=0.02, preprocess=0.01, optimizer=0.03,
                 backward=0.03),
            dict(step=0.2, data_wait=0.05, preprocess=0.01, optimizer=0.04,
                 backward=0.06),
            dict(step=0.3, data_wait=0.02, preprocess=0.02, optimizer=0.03,
                 backward=0.2)]
    cpu = [dict(step=0.1, data_wait=0.01, preprocess=0.01)] * 3
    out = tool.summarise(list(zip(wall, cpu)), batch_size=4)
    assert out['img_per_s'] == pytest.approx(12 / 0.6)
    assert out['step_ms'] == pytest.approx(200)
    assert out['data_wait_ms'] == pytest.approx(20)
    # fwd+bwd = step - data - preprocess - optimizer: 40, 100, 230 -> 100
    assert out['fwd_bwd_ms'] == pytest.approx(100)
    # forward = fwd+bwd - backward: 10, 40, 30 -> 30; backward median 60
    assert out['forward_ms'] == pytest.approx(30)
    assert out['backward_ms'] == pytest.approx(60)
    assert out['cpu_ms_per_img'] == pytest.approx(1e3 * 0.3 / 12)
    assert out['data_cpu_ms_per_img'] == pytest.approx(1e3 * 0.06 / 12)


def test_tiny_cpu_run_with_ceiling(tool, toy_root, tmp_path, capsys):
    out = tmp_path / 'tp.json'
    res = tool.main([CFG, '--ceiling', '--steps', '2', '--warmup', '1',
                     '--batch-size', '4', '--workers', '0', '--device',
                     'cpu', '--out', str(out), '--cfg-options',
                     f'train_dataloader.dataset.data_root={toy_root}/',
                     'model.queue_len=16'])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line) == json.loads(out.read_text())
    assert res['gpu_augment'] == ['view1', 'view2']
    assert res['batch_size'] == 4 and res['device'] == 'cpu'
    for key in ('data_wait_ms', 'preprocess_ms', 'fwd_bwd_ms', 'forward_ms',
                'backward_ms', 'optimizer_ms', 'ceiling_img_per_s', 'peak_mem_mib'):
        assert res[key] > 0, key
    assert res['ratio'] == pytest.approx(res['img_per_s'] /
                                         res['ceiling_img_per_s'])
    assert res['peak_mem_kind'] == 'process max RSS'
