# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/gpu_figures.py: the prepared GPU run of issue 18, run
tiny on the CPU -- its data layouts are what the paper configs read (also
through InsLoc's dataset wrapper), warm-up + steps may outlast one pass
over the images, an AMP config runs in fp32 on a CPU and says so, a
figure's throughput JSON lands in the summary, and a second run keeps
finished figures."""
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
            'cpu', '--tiny', '--steps', '1', '--warmup', '1', '--img-size',
            '64', '--num-images', '2', '--only', 'mocov2-gpuaug', 'soco',
            'insloc-gpuaug']
    rows = {name: (res, status) for name, res, status in tool.main(argv)}
    for name, (res, status) in rows.items():
        want = 'ok (fp32: AMP needs CUDA)' if name == 'soco' else 'ok'
        assert status == want, (out / f'{name}.log').read_text()[-2000:]
    # 2 batches of 2 from 2 images: the sampler went past one pass
    assert rows['soco'][0]['amp'] is False
    res = rows['mocov2-gpuaug'][0]
    assert res['gpu_augment'] == ['view1', 'view2'] and res['batch_size'] == 2
    assert res['amp'] is False and res['steps'] == 1
    # InsLoc's images are read through MultiImageMixDataset
    assert rows['insloc-gpuaug'][0]['gpu_augment'] == ['key', 'query']
    assert res == json.loads((out / 'mocov2-gpuaug.json').read_text())
    # the layouts the paper configs read
    names = (data / 'imagenet' / 'meta' / 'train.txt').read_text().split()
    assert len(names) == 2
    assert all((data / 'imagenet' / 'train' / n).is_file() for n in names)
    props = json.loads((data / 'coco' / 'proposals' /
                        'ss_fast_train2017.json').read_text())
    assert [im['file_name'] for im in props['images']] == names
    summary = (out / 'summary.md').read_text()
    assert '| mocov2-gpuaug | ' in summary and '| fp32 | - | ok |' in summary
    assert '| preprocess ms |' in summary
    again = {name: status for name, _, status in tool.main(argv)}
    assert again['mocov2-gpuaug'] == 'ok (earlier run)'


def test_same_figures_give_stock_our_protocol(tool):
    """The "-same" figures' --stock-options turn stock mmdet's detectors
    into our protocol's model: the ratio is the plugin's overhead alone
    (only the name of the 4conv1fc head differs: ours is mmdet's with
    SyncBN as its default norm)."""
    import argparse

    from mmengine.config import DictAction
    throughput = load_tool('tools/benchmarks/throughput.py')
    figs = {f[0]: f for f in tool.FIGURES}
    args = argparse.Namespace(amp=False, fp32=False, device='cpu')
    want = {'retinanet-vs-stock-same': [],
            'mask-rcnn-vs-stock-same': ['model.roi_head.bbox_head.type']}
    for name, expected in want.items():
        _, cfg, _, extra, _ = figs[name]
        stock = extra[extra.index('--compare') + 1]
        opts = extra[extra.index('--stock-options') + 1:]
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        ours = throughput.load_config(osp.join(REPO, cfg), None, args)
        theirs = throughput.load_config(stock, parser.parse_args(
            ['--o'] + opts).o, args)
        diff = [f'{part}.{k}' for part in ('model', 'optim_wrapper')
                for k in throughput.config_diff(ours[part].to_dict(),
                                                theirs[part].to_dict())]
        assert diff == expected, name
        # and without the options the protocol's differences are named
        plain = throughput.load_config(stock, None, args)
        assert 'backbone.norm_eval' in throughput.config_diff(
            ours.model.to_dict(), plain.model.to_dict())
