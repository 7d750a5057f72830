# Copyright (c) mmselfdet contributors. All rights reserved.
"""Learning rate vs batch size of every pretraining config.

The rule (docs/architecture.md, "Learning rate and batch size"): a config's
optimizer ``lr`` is the lr for the total batch its file name declares
(``<gpus>xb<per_gpu>``), i.e. the method's reference lr per 256 images x
gpus x per_gpu / 256, and ``auto_scale_lr = dict(enable=False,
base_batch_size=<that batch>)``: a plain run uses the lr as written, and
``--auto-scale-lr`` changes nothing at the declared batch and rescales
linearly at any other. The lr that will actually be used is computed by
mmengine's own ``Runner.scale_lr``.
"""
import glob
import os.path as osp
import re
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from .utils import REPO

# reference lr per 256 images, keyed by (model.type, optimizer type)
REF_LR_PER_256 = {
    ('MoCoV2', 'SGD'): 0.03,  # MoCo v2 and object-aware MoCo (METHODS §0, §2)
    ('InsLoc', 'SGD'): 0.03,  # METHODS §1 (nesterov)
    ('DetCo', 'SGD'): 0.03,  # METHODS §3
    ('BYOL', 'LARS'): 0.3,  # 4.8 at 4096 (configs/byol/README.md)
    ('SoCo', 'LARS'): 1.0,  # METHODS §4; end-to-end SoCo §5 is SoCo's recipe
}
# configs/<method>/ folders that hold pretraining configs of this rule
# (simdetr/ trains stock mmdet DETRs; benchmarks/ are downstream)
NOT_METHODS = {'_base_', 'benchmarks', 'simdetr'}
CONFIGS = sorted(
    c for c in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if osp.basename(osp.dirname(c)) not in NOT_METHODS)
PAPER = [c for c in CONFIGS if not c.endswith('_toy.py')]
TOY = [c for c in CONFIGS if c.endswith('_toy.py')]

def _ids(paths):
    return [osp.relpath(p, REPO) for p in paths]


def declared(path: str) -> dict:
    """What the file name declares: gpus, images per gpu, epochs or iters."""
    name = osp.basename(path)
    m = re.search(r'_(\d+)xb(\d+)-', name)
    assert m, f'{name}: no "<gpus>xb<per_gpu>" in the config name'
    out = dict(gpus=int(m.group(1)), per_gpu=int(m.group(2)))
    m = re.search(r'-(\d+)e_', name)
    out['epochs'] = int(m.group(1)) if m else None
    m = re.search(r'-(\d+)it_', name)
    out['iters'] = int(m.group(1)) if m else None
    return out


def used_lrs(cfg: Config, world_size: int, auto_scale: bool) -> list:
    """The lr of every param group after ``Runner.scale_lr`` (mmengine's
    code, run on a stand-in runner) for ``world_size`` processes of
    ``train_dataloader.batch_size`` images. ``auto_scale`` is what
    ``tools/train.py --auto-scale-lr`` does: set ``auto_scale_lr.enable``."""
    # only what decides the lr; AmpOptimWrapper needs CUDA
    wrapper_cfg = {k: v for k, v in cfg.optim_wrapper.items()
                   if k in ('optimizer', 'paramwise_cfg', 'constructor')}
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    auto_scale_lr = dict(cfg.get('auto_scale_lr') or {})
    if auto_scale:
        auto_scale_lr['enable'] = True
    runner = SimpleNamespace(_train_dataloader=cfg.train_dataloader,
                             world_size=world_size,
                             logger=MMLogger.get_current_instance(),
                             param_schedulers=None)
    Runner.scale_lr(runner, wrapper, auto_scale_lr)
    return sorted({g['lr'] for g in wrapper.optimizer.param_groups})


def reference_lr(cfg: Config, path: str) -> float:
    key = (cfg.model.type, cfg.optim_wrapper.optimizer.type)
    assert key in REF_LR_PER_256, (
        f'{osp.relpath(path, REPO)}: no reference lr per 256 images for '
        f'{key}; add the method to REF_LR_PER_256')
    return REF_LR_PER_256[key]


def test_configs_found():
    names = {osp.basename(p) for p in PAPER}
    assert 'byol-objcrop_r50_8xb32-coslr-200e_coco.py' in names
    assert 'soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py' in names
    assert len(PAPER) >= 14 and len(TOY) >= 8


@pytest.mark.parametrize('path', PAPER, ids=_ids(PAPER))
def test_paper_config_lr_matches_declared_batch(path):
    cfg = Config.fromfile(path)
    d = declared(path)
    assert cfg.train_dataloader.batch_size == d['per_gpu'], path
    batch = d['gpus'] * d['per_gpu']
    expected = reference_lr(cfg, path) * batch / 256
    # a plain run (no --auto-scale-lr): the lr as written must be right
    assert cfg.auto_scale_lr.get('enable') is False, (
        f'{path}: say auto_scale_lr.enable=False explicitly (stock mmdet '
        'train.py refuses --auto-scale-lr without the key)')
    assert used_lrs(cfg, d['gpus'], False) == pytest.approx(
        [expected], rel=1e-9), f'{path}: lr for batch {batch}'
    # --auto-scale-lr at the declared launch changes nothing ...
    assert cfg.auto_scale_lr.base_batch_size == batch, path
    assert used_lrs(cfg, d['gpus'], True) == pytest.approx(
        [expected], rel=1e-9), path
    # ... and on a quarter of the GPUs scales linearly from it
    if d['gpus'] % 4 == 0:
        assert used_lrs(cfg, d['gpus'] // 4, True) == pytest.approx(
            [expected / 4], rel=1e-9), path


def _check_schedule(cfg: Config, path: str, d: dict) -> None:
    """The lr schedulers tile the run and reach the configured lr: warm-up
    ends at factor 1 where the next one begins, cosine T_max spans its
    window, the last one ends with the run, absolute lr floors stay below
    the lr, and the length matches the name."""
    by_epoch = cfg.train_cfg.type == 'EpochBasedTrainLoop'
    length = cfg.train_cfg.max_epochs if by_epoch else cfg.train_cfg.max_iters
    assert length == (d['epochs'] if by_epoch else d['iters']), (
        f'{path}: the name says {d}, train_cfg runs {length}')
    scheds = cfg.param_scheduler
    scheds = scheds if isinstance(scheds, list) else [scheds]
    scheds = sorted(scheds, key=lambda s: s.get('begin', 0))
    lr = cfg.optim_wrapper.optimizer.lr
    pos = 0
    for s in scheds:
        assert s.get('by_epoch', True) == by_epoch, (path, s)
        assert s.get('begin', 0) == pos, (f'{path}: gap or overlap', s)
        end = s.get('end', length)
        if s.type == 'LinearLR':
            assert s.get('start_factor', 1 / 3) < 1, (path, s)
            assert s.get('end_factor', 1.0) == 1.0, (path, s)
        elif s.type == 'CosineAnnealingLR':
            assert s.T_max == end - s.get('begin', 0), (path, s)
            assert s.get('eta_min', 0.0) < lr, (path, s)
        else:
            raise AssertionError(f'{path}: check scheduler {s.type} here')
        pos = end
    assert pos == length, f'{path}: schedulers end at {pos}, run at {length}'


@pytest.mark.parametrize('path', PAPER, ids=_ids(PAPER))
def test_paper_config_schedule_consistent(path):
    _check_schedule(Config.fromfile(path), path, declared(path))


@pytest.mark.parametrize('path', TOY, ids=_ids(TOY))
def test_toy_config_auto_scale_base_is_declared_batch(path):
    """Toy lrs are toy choices (docs/methods.md §0), not reference x batch / 256;
    the rest of the rule holds: --auto-scale-lr at 1 x 32 changes nothing."""
    cfg = Config.fromfile(path)
    d = declared(path)
    assert cfg.train_dataloader.batch_size == d['per_gpu'], path
    lr = cfg.optim_wrapper.optimizer.lr
    assert used_lrs(cfg, d['gpus'], False) == pytest.approx([lr])
    assert cfg.auto_scale_lr.base_batch_size == d['gpus'] * d['per_gpu']
    assert used_lrs(cfg, d['gpus'], True) == pytest.approx([lr])


@pytest.mark.parametrize('path', TOY, ids=_ids(TOY))
def test_toy_config_schedule_consistent(path):
    _check_schedule(Config.fromfile(path), path, declared(path))
