# Copyright (c) mmselfdet contributors. All rights reserved.
"""tools/benchmarks/throughput.py: the step split and the rates are the
arithmetic of the timed sections; a tiny CPU run of the GPU-augmentation
toy config trains, times every section and compares to its ceiling; two
configs' steps interleave and a submodule's share of the step is its
hooked time (exact, on a clock the fake models advance); tiny CPU runs of
the heat-map share and of the fine-tuning comparison with stock mmdet."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from ..utils import REPO

CFG = osp.join(REPO, 'configs/mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py')
E2E = osp.join(REPO, 'configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py')
RETINA = osp.join(REPO, 'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py')
STOCK_RETINA = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'


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


def _tick_clock(tool):
    clock = tool.Clock(torch.device('cpu'))
    clock.t = 0.0
    clock.now = lambda: (clock.t, clock.t)
    return clock


class _Proposer(torch.nn.Module):
    def __init__(self, clock, cost):
        super().__init__()
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.t += self.cost
        return x


class _Model(torch.nn.Module):
    """train_step spends `outer` outside and `inner` inside box_source, and
    logs its name (to see the interleaving)."""

    def __init__(self, name, clock, log, outer, inner):
        super().__init__()
        self.name, self.clock, self.log, self.outer = name, clock, log, outer
        self.box_source = _Proposer(clock, inner)

    def train_step(self, batch, optim_wrapper):
        self.log.append(self.name)
        self.clock.t += self.outer
        self.box_source(batch)


def test_interleaved_steps_and_module_share(tool):
    log = []
    clocks = [_tick_clock(tool), _tick_clock(tool)]
    models = [_Model('ours', clocks[0], log, outer=0.3, inner=0.1),
              _Model('stock', clocks[1], log, outer=0.5, inner=0.0)]
    tool.time_module(models[0], clocks[0], 'box_source')
    with pytest.raises(AttributeError, match='--time-module heat'):
        tool.time_module(models[0], clocks[0], 'heat')
    per = tool.run_interleaved(
        [(m, None, lambda: 0, c) for m, c in zip(models, clocks)],
        steps=3, warmup=1)
    # one step of each in turn, warm-up included
    assert log == ['ours', 'stock'] * 4
    assert [len(p) for p in per] == [3, 3]
    job = dict(batch_size=2, modules=['box_source'])
    res = tool.summarise_job(job, per[0])
    assert res['step_ms'] == pytest.approx(400)
    assert res['box_source_ms'] == pytest.approx(100)
    assert res['box_source_share'] == pytest.approx(0.25)
    stock = tool.summarise_job(dict(batch_size=2, modules=[]), per[1])
    assert res['step_ms'] / stock['step_ms'] == pytest.approx(0.8)


def test_config_diff_names_the_differing_keys(tool):
    a = dict(_scope_='mmdet', head=dict(num_classes=5, norm=dict(type='GN')),
             neck=dict(out=256))
    b = dict(head=dict(num_classes=80), neck=dict(out=256))
    assert tool.config_diff(a, b) == ['head.norm', 'head.num_classes']


def test_tiny_cpu_heat_map_share(tool, toy_root):
    # in channels_last too (the SoCo RoIAlign path runs guarded)
    res = tool.main([E2E, '--steps', '1', '--warmup', '0', '--batch-size',
                     '2', '--workers', '0', '--device', 'cpu',
                     '--channels-last', '--cfg-options',
                     f'train_dataloader.dataset.data_root={toy_root}/'])
    assert res['channels_last'] is True
    assert 0 < res['box_source_ms'] < res['step_ms']
    # one step: the share is the step's own ratio
    assert res['box_source_share'] == pytest.approx(
        res['box_source_ms'] / res['step_ms'])


def test_tiny_cpu_finetune_compare(tool, toy_root):
    res = tool.main([RETINA, '--compare', STOCK_RETINA, '--steps', '1',
                     '--warmup', '0', '--batch-size', '1', '--workers', '0',
                     '--device', 'cpu', '--cfg-options',
                     f'train_dataloader.dataset.data_root={toy_root}/',
                     '--stock-options', 'model.bbox_head.num_classes=5'])
    assert res['stock']['config'] == STOCK_RETINA
    assert res['overhead_ratio'] == pytest.approx(
        res['step_ms'] / res['stock']['step_ms'])
    # our protocol's real differences are named; the option took effect
    assert res['cpu_overhead_ratio'] == pytest.approx(
        res['cpu_ms_per_img'] / res['stock']['cpu_ms_per_img'])
    assert 'model.bbox_head.norm_cfg' in res['model_diff']
    assert 'model.backbone.norm_eval' in res['model_diff']
    assert 'optim_wrapper.clip_grad' in res['model_diff']
    assert 'model.bbox_head.num_classes' not in res['model_diff']


def test_amp_is_train_py_twin_in_fp16(tool):
    """``--amp`` swaps in tools/train.py's AMP twin, dtype left to the CUDA
    autocast default (float16: mmcv has no bf16 RoIAlign); CPU refused."""
    args = tool.parse_args([CFG, '--amp', '--device', 'cpu'])
    with pytest.raises(ValueError, match='--amp needs --device cuda'):
        tool.load_config(CFG, None, args)
    args.device = 'cuda'  # only the config is made, nothing runs
    ow = tool.load_config(CFG, None, args).optim_wrapper
    assert ow.type == 'NonFiniteGuardAmpOptimWrapper'
    assert ow.loss_scale == 'dynamic' and ow.get('dtype') is None
    assert torch.get_autocast_dtype('cuda') == torch.float16


def test_fp32_is_the_amp_configs_fp32_twin(tool):
    """``--fp32`` turns an AMP config's wrapper into its fp32 twin, without
    the AMP-only keys (the fp32 side of an fp16 vs fp32 figure)."""
    soco = osp.join(REPO, 'configs/soco/soco_r50_fpn_8xb32-lars-100e_in1k.py')
    args = tool.parse_args([soco, '--fp32', '--device', 'cpu'])
    amp_ow = tool.load_config(soco, None, tool.parse_args([soco])).optim_wrapper
    assert amp_ow.type == 'NonFiniteGuardAmpOptimWrapper'
    ow = tool.load_config(soco, None, args).optim_wrapper
    assert ow.type == 'NonFiniteGuardOptimWrapper'
    assert 'loss_scale' not in ow and 'dtype' not in ow
    assert ow.optimizer == amp_ow.optimizer  # nothing else changed
    # an fp32 config is left as it is
    assert tool.load_config(CFG, None, tool.parse_args(
        [CFG, '--fp32'])).optim_wrapper.type == 'NonFiniteGuardOptimWrapper'
    args.amp = True
    with pytest.raises(ValueError, match='--amp and --fp32'):
        tool.load_config(soco, None, args)


def test_preprocess_host_cost_tool(toy_root, capsys):
    """tools/benchmarks/preprocess_host.py times the config's preprocessor
    on its own batch (views cut to 8 px), with the in-place cast or
    mmengine's, and says which."""
    from ..utils import load_tool
    tool = load_tool('tools/benchmarks/preprocess_host.py')
    argv = [CFG, '--batch-size', '4', '--repeats', '2', '--cfg-options',
            f'train_dataloader.dataset.data_root={toy_root}/']
    ours = tool.main(argv)
    assert json.loads(capsys.readouterr().out.strip()) == ours
    theirs = tool.main(argv + ['--mmengine-cast'])
    assert ours['cast'] == 'in place' and theirs['cast'] == 'mmengine'
    assert ours['views'] == ['view1', 'view2'] and ours['size'] == 8
    assert ours['host_ms_per_img'] > 0 and theirs['host_ms_per_img'] > 0
    # MoCo v2 data samples: labels + boxes of instances and ignored ones
    assert ours['sample_tensors'] == 4 * 2 * 4
    cut = tool.cut(dict(a=torch.zeros(2, 3, 9, 9),
                        b=[torch.zeros(3, 9, 9)]), 4)
    assert cut['a'].shape == (2, 3, 4, 4) and cut['b'][0].shape == (3, 4, 4)
    # launches on a GPU: mmengine's cast copies each data-sample tensor on
    # its own, the in-place cast each view's in one copy
    assert ours['device_ops'] > 0
    assert theirs['device_ops'] - ours['device_ops'] == \
        ours['sample_tensors'] - len(ours['views'])


def test_device_ops_counts_launches_not_views():
    """``device_ops``: ops that make a device tensor (copies included),
    views and host-side ops left out."""
    from ..utils import load_tool
    tool = load_tool('tools/benchmarks/preprocess_host.py')

    class Pre(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('w', torch.ones(3))

        def forward(self, data, training):
            x = data['x'].to(self.w.device)  # 1: the copy
            x = x.view(-1)[:3].unsqueeze(0)  # views: 0
            host = data['x'].sum() * 2  # on the host: 0
            return (x * self.w + 1, host)  # 2

    pre = Pre()
    assert tool.count_device_ops(pre, dict(x=torch.ones(2, 2))) == 3
    assert pre.w.device.type == 'cpu'  # a copy was moved
