# Copyright (c) mmselfdet contributors. All rights reserved.
import glob
import math
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmselfdet.engine import LARS, MomentumScheduleHook
from mmselfdet.models.utils import CosineMomentumEMA, build_momentum_encoder
from mmselfdet.registry import MODELS
from ..utils import REPO


def _uses_lars(path: str) -> bool:
    """Whether the config or a config in its ``_base_`` chain names LARS
    (a text scan: loading every config would take ~30 s)."""
    with open(path) as f:
        text = f.read()
    if re.search(r"type=['\"]LARS['\"]", text):
        return True
    head = re.search(r'_base_\s*=\s*(\[[^\]]*\]|[\'"][^\'"]*[\'"])', text)
    bases = re.findall(r"['\"]([^'\"]+\.py)['\"]", head.group(1)) if head \
        else []
    return any(_uses_lars(osp.join(osp.dirname(path), b)) for b in bases
               if '::' not in b)


ALL_CONFIGS = sorted(c for c in glob.glob(osp.join(REPO, 'configs', '**',
                                                   '*.py'), recursive=True)
                     if '/_base_/' not in c)
LARS_CONFIGS = [c for c in ALL_CONFIGS if _uses_lars(c)]


def test_lars_trust_ratio_and_exclude():
    w = nn.Parameter(torch.full((2, 2), 2.0))
    b = nn.Parameter(torch.full((4,), 2.0))
    opt = LARS([dict(params=[w]), dict(params=[b], lars_exclude=True)],
               lr=1.0, momentum=0.0, weight_decay=0.0, eta=0.1)
    w.grad = torch.full((2, 2), 1.0)
    b.grad = torch.full((4,), 1.0)
    opt.step()
    # trust = 0.1 * ||w|| / ||g|| = 0.1 * 4 / 2 = 0.2
    assert torch.allclose(w, torch.full((2, 2), 2.0 - 0.2))
    assert torch.allclose(b, torch.full((4,), 1.0))  # plain SGD step
    with pytest.raises(ValueError):
        LARS([w], lr=-1)


def test_lars_from_mmengine_config_reaches_lower_loss():
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='LARSOptimWrapperConstructor',
        optimizer=dict(type='LARS', lr=1.0, weight_decay=1e-5, eta=0.02)))
    groups = wrapper.optimizer.param_groups
    assert [g['lars_exclude'] for g in groups] == [
        False, True, True, True, False, True]  # weight, bias, BN w/b, ...
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    first = None
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        first = first if first is not None else float(loss)
        wrapper.update_params(loss)
    assert float(loss) < first


def test_lars_warns_on_1d_params_without_exclusion():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with pytest.warns(UserWarning, match='3 parameter.*LARSOptimWrapper'):
        build_optim_wrapper(model, dict(
            type='OptimWrapper', paramwise_cfg=dict(exclude_1d=True),
            optimizer=dict(type='LARS', lr=1.0, weight_decay=1e-5)))
    with pytest.warns(UserWarning, match='3 parameter'):  # switched off
        wrapper = build_optim_wrapper(model, dict(
            type='OptimWrapper', constructor='LARSOptimWrapperConstructor',
            paramwise_cfg=dict(exclude_1d=False),
            optimizer=dict(type='LARS', lr=1.0, weight_decay=1e-5)))
    assert not any(g['lars_exclude'] for g in wrapper.optimizer.param_groups)


def test_cosine_momentum_schedule():
    ema = build_momentum_encoder(nn.Linear(2, 2), momentum=0.01,
                                 end_momentum=0.0)
    assert isinstance(ema, CosineMomentumEMA)
    assert ema.current_momentum(5) == 0.01  # no schedule length yet
    ema.max_steps = 100
    assert math.isclose(ema.current_momentum(0), 0.01)
    assert math.isclose(ema.current_momentum(50), 0.005, rel_tol=1e-6)
    assert ema.current_momentum(100) == pytest.approx(0.0, abs=1e-12)
    assert ema.current_momentum(200) == pytest.approx(0.0, abs=1e-12)


def test_momentum_schedule_hook_sets_max_steps():
    class Runner:
        max_iters = 123
        model = nn.Module()
    Runner.model.ema = build_momentum_encoder(nn.Linear(2, 2), momentum=0.01,
                                              end_momentum=0.0)
    MomentumScheduleHook().before_train(Runner)
    assert Runner.model.ema.max_steps == 123
    Runner.model = nn.Linear(2, 2)
    with pytest.raises(AssertionError, match='CosineMomentumEMA'):
        MomentumScheduleHook().before_train(Runner)


def test_lars_configs_found():
    names = {osp.basename(c) for c in LARS_CONFIGS}
    assert {'byol_r50_16xb256-coslr-200e_in1k.py',
            'byol-objcrop_r50_8xb32-coslr-200e_coco.py',
            'soco_r50_fpn_8xb32-lars-100e_in1k.py',
            'soco-e2e_r50_fpn_8xb32-lars-400e_in1k.py'} <= names, names
    # the text scan agrees with the loaded configs of the method folders
    # (downstream and DETR configs load slowly through mmdet:: bases)
    for path in ALL_CONFIGS:
        if '/benchmarks/' in path or '/simdetr/' in path:
            continue
        cfg = Config.fromfile(path)
        is_lars = cfg.get('optim_wrapper', {}).get(
            'optimizer', {}).get('type') == 'LARS'
        assert is_lars == (path in LARS_CONFIGS), path


@pytest.mark.parametrize('path', LARS_CONFIGS,
                         ids=[osp.relpath(c, REPO) for c in LARS_CONFIGS])
def test_lars_config_excludes_every_1d_param(path):
    """BYOL and SoCo exclude every 1-D parameter (BN weights and biases of
    backbone, FPN, box head, projector and predictor, e.g. the BN1d gamma
    ``mlp.1.weight``; all biases) from weight decay and the trust ratio;
    every weight of >= 2 dims is decayed and LARS-scaled."""
    cfg = Config.fromfile(path)
    wrapper_cfg = cfg.optim_wrapper.copy()
    # AMP wrappers need CUDA; their fp32 twins build the same param groups
    fp32_of = {'AmpOptimWrapper': 'OptimWrapper',
               'NonFiniteGuardAmpOptimWrapper': 'NonFiniteGuardOptimWrapper'}
    if wrapper_cfg['type'] in fp32_of:
        wrapper_cfg['type'] = fp32_of[wrapper_cfg['type']]
        wrapper_cfg.pop('loss_scale', None)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    wd = cfg.optim_wrapper.optimizer.weight_decay
    assert wd > 0
    group_of = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in group_of
            group_of[id(p)] = group
    seen = dict(bn1d_gamma=0, flat=0, weight=0)
    for name, p in model.named_parameters():
        if not p.requires_grad:  # the EMA target network
            assert id(p) not in group_of, name
            continue
        group = group_of[id(p)]
        if p.ndim <= 1:
            assert group['weight_decay'] == 0, f'{path}: {name} is decayed'
            assert group['lars_exclude'], f'{path}: {name} is LARS-scaled'
            seen['flat'] += 1
            if re.search(r'mlp\.\d+\.weight$', name):
                seen['bn1d_gamma'] += 1
        else:
            assert group['weight_decay'] == wd, f'{path}: {name}'
            assert not group.get('lars_exclude', False), f'{path}: {name}'
            seen['weight'] += 1
    # projector and predictor BN1d gammas were among the checked params
    assert seen['bn1d_gamma'] >= 2 and seen['weight'] > 50, seen


def test_lars_step_plain_sgd_for_1d_trust_ratio_for_2d():
    """Two LARS steps through the constructor on a tiny module, against the
    update computed here: 1-D parameters (biases, BN1d weight and bias) take
    plain momentum SGD without decay; 2-D weights take the trust-ratio-scaled
    step of ``g + wd * w``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4),
                          nn.Linear(4, 2))
    lr, mom, wd, eta = 0.5, 0.9, 0.1, 0.01
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper',
        constructor='LARSOptimWrapperConstructor',
        optimizer=dict(type='LARS', lr=lr, momentum=mom, weight_decay=wd,
                       eta=eta),
        paramwise_cfg=dict(exclude_1d=True)))
    params = dict(model.named_parameters())
    expected = {n: p.detach().clone() for n, p in params.items()}
    buf = {}
    for _ in range(2):
        grads = {n: torch.randn_like(p) for n, p in params.items()}
        for n, p in params.items():
            p.grad = grads[n].clone()
            w, g = expected[n], grads[n]
            if w.ndim == 1:
                d = g
            else:
                d = g + wd * w
                d = d * (eta * w.norm() / (d.norm() + 1e-8))
            buf[n] = d if n not in buf else mom * buf[n] + d
            expected[n] = w - lr * buf[n]
        wrapper.step()
        for n, p in params.items():
            assert torch.allclose(p, expected[n], atol=1e-6), n
    assert {n for n, p in params.items() if p.ndim == 1} == {
        '0.bias', '1.weight', '1.bias', '2.bias'}
