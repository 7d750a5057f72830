# Copyright (c) mmselfdet contributors. All rights reserved.
"""``MomentumEMA`` / ``CosineMomentumEMA``: the values of mmengine's EMA
update to the bit, without reading the step count back from the device
(checked on the ``meta`` device, where a read raises), and a count written
from outside (a checkpoint, a test) is still honoured."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage

from mmselfdet.models.utils.momentum import CosineMomentumEMA, MomentumEMA


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def train_a_little(model, seed):
    """New parameters and BN statistics, as an optimizer step would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
        model.train()
        model(torch.randn(2, 3, 8, 8, generator=gen))


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(
            sa[key], sb[key]), key


def reference_update(ema, model):
    """mmengine's own ``update_parameters`` (a kernel and a read per
    tensor) on a copy of ours: the values ours must give."""
    ExponentialMovingAverage.update_parameters(ema, model)


@pytest.mark.parametrize('interval', [1, 2])
def test_update_equals_mmengines_ema(interval):
    online = net()
    ours = MomentumEMA(online, momentum=0.01, interval=interval)
    ref = ExponentialMovingAverage(online, momentum=0.01, interval=interval)
    for step in range(5):
        train_a_little(online, step)
        ours.update_parameters(online)
        ref.update_parameters(online)
        same_state(ours, ref)
    assert int(ours.steps) == 5
    assert not torch.equal(ours.module[0].weight, online[0].weight)


def test_cosine_schedule_equals_the_per_tensor_update():
    online = net()
    ours = CosineMomentumEMA(online, momentum=0.2, end_momentum=0.0,
                             max_steps=4)
    ref = copy.deepcopy(ours)
    for step in range(6):
        train_a_little(online, step)
        ours.update_parameters(online)
        reference_update(ref, online)
        same_state(ours, ref)


def test_a_count_written_from_outside_is_honoured():
    online = net()
    ours = CosineMomentumEMA(online, momentum=0.2, end_momentum=0.0,
                             max_steps=10)
    ref = copy.deepcopy(ours)
    train_a_little(online, 0)
    ours.update_parameters(online)
    reference_update(ref, online)
    # a checkpoint loaded in place (steps 7: another point of the schedule)
    state = copy.deepcopy(ref.state_dict())
    state['steps'].fill_(7)
    ours.load_state_dict(state)
    ref.load_state_dict(state)
    train_a_little(online, 1)
    ours.update_parameters(online)
    reference_update(ref, online)
    same_state(ours, ref)
    assert int(ours.steps) == 8
    # written in place: back to 0 means "copy the online network"
    ours.steps.fill_(0)
    train_a_little(online, 2)
    ours.update_parameters(online)
    for a, b in zip(ours.module.parameters(), online.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize('cls', [MomentumEMA, CosineMomentumEMA])
def test_update_never_reads_the_device(cls):
    """On ``meta`` tensors any read-back raises: built on the CPU, moved
    (the count moves with the buffer), updated twice."""
    online = net()
    ours = cls(online, momentum=0.01)
    online.to('meta')
    ours.to('meta')
    assert ours.steps.device.type == 'meta'
    ours.update_parameters(online)  # copy
    ours.update_parameters(online)  # average
    assert ours.host_steps() == 2
    assert ours.module[0].weight.device.type == 'meta'
