# Copyright (c) mmselfdet contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn as nn

from mmselfdet.engine import LARS, MomentumScheduleHook
from mmselfdet.models.utils import CosineMomentumEMA, build_momentum_encoder


def test_lars_trust_ratio_and_exclude():
    w = nn.Parameter(torch.full((4,), 2.0))
    b = nn.Parameter(torch.full((4,), 2.0))
    opt = LARS([dict(params=[w]), dict(params=[b], lars_exclude=True)],
               lr=1.0, momentum=0.0, weight_decay=0.0, eta=0.1)
    w.grad = torch.full((4,), 1.0)
    b.grad = torch.full((4,), 1.0)
    opt.step()
    # trust = 0.1 * ||w|| / ||g|| = 0.1 * 4 / 2 = 0.2
    assert torch.allclose(w, torch.full((4,), 2.0 - 0.2))
    assert torch.allclose(b, torch.full((4,), 1.0))  # plain SGD step
    with pytest.raises(ValueError):
        LARS([w], lr=-1)


def test_lars_from_mmengine_config_reaches_lower_loss():
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper',
        optimizer=dict(type='LARS', lr=1.0, weight_decay=1e-5, eta=0.02),
        paramwise_cfg=dict(custom_keys={
            '1.': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True)})))
    groups = wrapper.optimizer.param_groups
    assert any(g.get('lars_exclude') for g in groups)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    first = None
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        first = first if first is not None else float(loss)
        wrapper.update_params(loss)
    assert float(loss) < first


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
