# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/engine/optim_wrappers/nonfinite_guard.py
# covers: mmselfdet/engine/hooks/nonfinite_loss_hook.py
"""NonFiniteGuardOptimWrapper: a non-finite loss term (or gradient) stops
training with a diagnostic, or skips exactly that optimizer step (parameters
and optimizer state bit-identical) and counts it, up to ``max_skips``."""
import copy

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, build_optim_wrapper
from torch import nn

from mmselfdet.engine import (NonFiniteGuardOptimWrapper, NonFiniteLossHook,
                              SafeCheckpointHook)
from ..utils import TOY_MOCO


class NaNGrad(torch.autograd.Function):
    """Identity forward, NaN gradient: a finite loss, non-finite grads."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float('nan')


class ToyAlgo(BaseModel):
    """Two loss terms and a metric; ``poison`` makes one term NaN (or the
    gradient, with ``'grad'``) in the steps listed in ``poison_steps``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.step, self.poison, self.poison_steps = 0, 'loss_b', ()

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.step += 1
        out = self.lin(inputs)  # (N, 2)
        bad = self.step in self.poison_steps
        if bad and self.poison == 'grad':
            out = NaNGrad.apply(out)
        loss_b = out[:, 1].abs().mean()
        if bad and self.poison == 'loss_b':
            loss_b = loss_b * float('nan')
        return dict(loss_a=out[:, 0].pow(2).mean(), loss_b=loss_b,
                    acc=torch.tensor(0.5))


def _batch(n=3):
    samples = [DetDataSample(metainfo=dict(img_id=i, img_path=f'/im/{i}.jpg'))
               for i in range(n)]
    g = torch.Generator().manual_seed(0)
    return dict(inputs=torch.randn(n, 3, generator=g), data_samples=samples)


def _setup(policy='stop', max_skips=10, poison='loss_b', steps=(2, )):
    torch.manual_seed(0)
    hub = MessageHub.get_instance('test_nonfinite_guard')
    model = ToyAlgo()
    model.poison, model.poison_steps = poison, steps
    wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                  weight_decay=1e-2),
        policy=policy, max_skips=max_skips)
    wrapper.message_hub = hub
    return model, wrapper, hub


def _state(model, wrapper):
    return (copy.deepcopy(model.state_dict()),
            copy.deepcopy(wrapper.optimizer.state_dict()))


def _identical(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_identical, a, b))
    return a == b


def _train(model, wrapper, hub, iters, states=None):
    """``iters`` train steps; ``(before, after)`` states of each step (also
    of a step that raised) are appended to ``states``."""
    states = [] if states is None else states
    for it in range(iters):
        hub.update_info('iter', it)
        before = _state(model, wrapper)
        try:
            model.train_step(_batch(), wrapper)
        finally:
            states.append((before, _state(model, wrapper)))
    return states


def test_nan_term_stops_with_term_iteration_and_images():
    model, wrapper, hub = _setup('stop')
    states = []
    with pytest.raises(FloatingPointError) as e:
        _train(model, wrapper, hub, 3, states)
    msg = str(e.value)
    assert 'NonFiniteGuardOptimWrapper: non-finite loss at iteration 2' in msg
    assert 'loss_b=nan' in msg and 'loss_a' not in msg  # the bad term only
    assert 'on rank 0' in msg
    assert "['0:/im/0.jpg', '1:/im/1.jpg', '2:/im/2.jpg']" in msg
    assert model.step == 2 and wrapper.skipped_steps == 0
    (b1, a1), (b2, a2) = states
    assert _identical(b2, a2) and not _identical(b1, a1)


def test_nan_term_skip_leaves_params_and_optimizer_state_bit_identical():
    model, wrapper, hub = _setup('skip')
    (b1, a1), (b2, a2), (b3, a3) = _train(model, wrapper, hub, 3)
    assert _identical(b2, a2)  # weights, momentum buffers, param groups
    for p in model.parameters():  # the zero loss left zero gradients
        assert p.grad is None or not p.grad.any()
    assert not _identical(b1[0], a1[0]) and not _identical(b3[0], a3[0])
    assert not _identical(b3[1], a3[1])  # momentum moves again after
    assert wrapper.skipped_steps == 1
    assert hub.log_scalars['train/skipped_steps'].current() == 1


def test_skip_limit_stops_the_run():
    model, wrapper, hub = _setup('skip', max_skips=1, steps=(2, 3))
    with pytest.raises(FloatingPointError) as e:
        _train(model, wrapper, hub, 4)
    msg = str(e.value)
    assert 'at iteration 3' in msg
    assert '(1 steps skipped already, max_skips=1)' in msg
    assert model.step == 3 and wrapper.skipped_steps == 1


def test_nonfinite_gradient_of_a_finite_loss():
    model, wrapper, hub = _setup('skip', poison='grad')
    (b1, a1), (b2, a2), _ = _train(model, wrapper, hub, 3)
    assert _identical(b2, a2) and not _identical(b1, a1)
    assert wrapper.skipped_steps == 1
    model, wrapper, hub = _setup('stop', poison='grad')
    with pytest.raises(FloatingPointError) as e:
        _train(model, wrapper, hub, 3)
    assert ('non-finite gradient at iteration 2 on rank 0: lin.weight, '
            'lin.bias (2 parameters)') in str(e.value)


def test_a_finite_rank_skips_when_another_rank_is_not(monkeypatch):
    """The ranks agree through one all_reduce (max) of a flag per check:
    here the other rank's flag (1) arrives at step 2, so this rank, whose
    loss and gradients are finite, skips that step too."""
    from mmselfdet.engine.optim_wrappers import nonfinite_guard as guard
    model, wrapper, hub = _setup('skip', steps=())
    calls = []

    def all_reduce(flag, op):
        calls.append((model.step, float(flag), op))
        if model.step == 2 and len(calls) % 2 == 1:  # the loss check
            flag.fill_(1.0)

    monkeypatch.setattr(guard, 'get_world_size', lambda: 2)
    monkeypatch.setattr(guard, 'all_reduce', all_reduce)
    (b1, a1), (b2, a2), (b3, a3) = _train(model, wrapper, hub, 3)
    assert _identical(b2, a2) and not _identical(b3, a3)
    assert wrapper.skipped_steps == 1
    # steps 1 and 3: loss and gradient checks; step 2: the loss check only
    assert calls == [(1, 0.0, 'max'), (1, 0.0, 'max'), (2, 0.0, 'max'),
                     (3, 0.0, 'max'), (3, 0.0, 'max')]
    wrapper.set_policy('stop')
    model.step = 1  # next forward is step 2 again
    calls.clear()
    with pytest.raises(FloatingPointError,
                       match='this rank is finite, another rank is not'):
        _train(model, wrapper, hub, 1)


def _amp_wrapper(model, monkeypatch=None):
    from mmselfdet.engine import NonFiniteGuardAmpOptimWrapper
    if monkeypatch is not None:  # AmpOptimWrapper refuses to exist without
        import mmengine.optim.optimizer.amp_optimizer_wrapper as amp  # CUDA
        monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    wrapper = NonFiniteGuardAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        policy='skip')
    wrapper.message_hub = MessageHub.get_instance('test_nonfinite_guard')
    return wrapper


def test_amp_variant_skips_the_nan_step(monkeypatch):
    """The guard composes with AmpOptimWrapper (without CUDA its loss
    scaler is disabled: this checks the composition, the GPU test below
    the scaler)."""
    model, _, hub = _setup()
    wrapper = _amp_wrapper(model, monkeypatch)
    (b1, a1), (b2, a2), (b3, a3) = _train(model, wrapper, hub, 3)
    assert _identical(b2, a2) and wrapper.skipped_steps == 1
    assert not _identical(b1, a1) and not _identical(b3, a3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_amp_variant_with_the_loss_scaler():
    model, _, hub = _setup()
    model.cuda()
    wrapper = _amp_wrapper(model)
    scaler = lambda: copy.deepcopy(wrapper.loss_scaler.state_dict())  # noqa
    hub.update_info('iter', 0)
    model.train_step(_batch(), wrapper)
    before, sc = _state(model, wrapper), scaler()
    hub.update_info('iter', 1)
    model.train_step(_batch(), wrapper)  # NaN loss: skipped, scaler kept
    assert _identical(before, _state(model, wrapper)) and sc == scaler()
    assert wrapper.skipped_steps == 1
    # NaN gradients of a finite loss: the scaler's business, not counted
    model.poison, model.poison_steps = 'grad', (model.step + 1, )
    hub.update_info('iter', 2)
    model.train_step(_batch(), wrapper)
    assert _identical(before, _state(model, wrapper))
    assert scaler()['scale'] == sc['scale'] / 2 and wrapper.skipped_steps == 1


def test_bad_policy_named():
    with pytest.raises(ValueError, match="policy must be one of .*'halt'"):
        _setup('halt')
    with pytest.raises(ValueError, match='NonFiniteLossHook'):
        NonFiniteLossHook(policy='halt')


class _Runner:
    def __init__(self, optim_wrapper):
        self.optim_wrapper = optim_wrapper


def test_deprecated_hook_sets_the_guard_or_names_the_fix():
    model, guard, hub = _setup('stop')
    runner = _Runner(guard)
    NonFiniteLossHook(policy='skip', max_skips=3).before_train(runner)
    assert runner.optim_wrapper is guard
    assert (guard.policy, guard.max_skips) == ('skip', 3)
    (b1, a1), (b2, a2) = _train(model, guard, hub, 2)  # and it skips
    assert _identical(b2, a2) and guard.skipped_steps == 1
    plain = _Runner(OptimWrapper(optimizer=torch.optim.SGD(
        model.parameters(), lr=0.1)))
    with pytest.raises(TypeError, match="cannot guard OptimWrapper.*optim_"
                       "wrapper.type='NonFiniteGuardOptimWrapper'"):
        NonFiniteLossHook().before_train(plain)


def test_config_route_and_toy_runtime():
    wrapper = build_optim_wrapper(nn.Linear(2, 2), dict(
        type='NonFiniteGuardOptimWrapper', policy='skip', max_skips=2,
        optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, NonFiniteGuardOptimWrapper)
    assert (wrapper.policy, wrapper.max_skips) == ('skip', 2)
    cfg = Config.fromfile(TOY_MOCO)
    assert cfg.optim_wrapper.type == 'NonFiniteGuardOptimWrapper'
    assert cfg.default_hooks.checkpoint.type == SafeCheckpointHook.__name__


def test_old_import_paths():
    from mmselfdet.engine import checkpoint_hooks, hooks, loss_guard
    assert checkpoint_hooks.SafeCheckpointHook is hooks.SafeCheckpointHook
    assert loss_guard.NonFiniteLossHook is NonFiniteLossHook
    assert loss_guard.batch_image_names(_batch(2)) == ['0:/im/0.jpg',
                                                       '1:/im/1.jpg']
    assert hooks.MomentumScheduleHook.__module__.endswith(
        'hooks.momentum_schedule_hook')
