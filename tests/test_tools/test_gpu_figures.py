# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/gpu_figures.py: the prepared GPU run of issue 18, run
tiny on the CPU -- its data layouts are what the paper configs read, a
figure's throughput JSON lands in the summary, AMP figures are skipped on
a CPU, and a second run keeps finished figures."""
import json
import os.path as osp

import pytest

from ..utils import REPO, load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/benchmarks/gpu_figures.py')


def test_every_figure_names_an_existing_config(tool):
    from mmengine.config import Config
    names = [f[0] for f in tool.FIGURES]
    assert len(names) == len(set(names))
    for name, cfg, layout, extra, amp in tool.FIGURES:
        ow = Config.fromfile(osp.join(REPO, cfg)).optim_wrapper
        assert layout in (tool.IN1K, tool.COCO)
        # the AMP flag (skipped on a CPU) is the config's or the run's
        assert amp == ('--amp' in extra or 'Amp' in ow.type), name


def test_tiny_cpu_run_and_resume(tool, tmp_path):
    out, data = tmp_path / 'out', tmp_path / 'data'
    argv = ['--out-dir', str(out), '--data-dir', str(data), '--device',
            'cpu', '--tiny', '--steps', '1', '--warmup', '0', '--img-size',
            '64', '--num-images', '4', '--only', 'mocov2-gpuaug', 'soco']
    rows = {name: (res, status) for name, res, status in tool.main(argv)}
    assert rows['soco'] == ({}, 'skipped: AMP needs CUDA')
    res, status = rows['mocov2-gpuaug']
    assert status == 'ok', (out / 'mocov2-gpuaug.log').read_text()[-2000:]
    assert res['gpu_augment'] == ['view1', 'view2'] and res['batch_size'] == 2
    assert res == json.loads((out / 'mocov2-gpuaug.json').read_text())
    # the layouts the paper configs read
    names = (data / 'imagenet' / 'meta' / 'train.txt').read_text().split()
    assert len(names) == 4
    assert all((data / 'imagenet' / 'train' / n).is_file() for n in names)
    props = json.loads((data / 'coco' / 'proposals' /
                        'ss_fast_train2017.json').read_text())
    assert [im['file_name'] for im in props['images']] == names
    summary = (out / 'summary.md').read_text()
    assert '| mocov2-gpuaug | ' in summary and '| ok |' in summary
    again = {name: status for name, _, status in tool.main(argv)}
    assert again['mocov2-gpuaug'] == 'ok (earlier run)'
