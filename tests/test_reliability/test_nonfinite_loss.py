# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/engine/loss_guard.py
"""NonFiniteLossHook: a NaN loss stops training with a diagnostic, or skips
exactly that optimizer step when configured; never silent."""
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmselfdet.registry import HOOKS

from ..utils import write_random_images
from .helpers import reliability_config

NAN_AT = ("custom_hooks = [dict(type='TestFaultHook', action='nan', "
          "at_iter=3), dict(type='WeightProbeHook')]\n")


@HOOKS.register_module(force=True)
class WeightProbeHook(Hook):
    """Records a backbone weight before and after every iteration."""

    def __init__(self):
        self.before, self.after = {}, {}

    def _w(self, runner):
        return runner.model.backbone.conv1.weight.detach().clone()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter + 1] = self._w(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.after[runner.iter + 1] = self._w(runner)


def _runner(tmp_path, policy):
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg = Config.fromfile(reliability_config(
        imgs, str(tmp_path / 'work'), max_iters=5, ckpt_interval=5,
        extra=NAN_AT))
    cfg.default_hooks.nonfinite_loss = dict(type='NonFiniteLossHook',
                                            policy=policy)
    return Runner.from_cfg(cfg)


def test_nan_loss_stops_with_term_iteration_and_images(tmp_path):
    runner = _runner(tmp_path, 'stop')
    with pytest.raises(FloatingPointError) as e:
        runner.train()
    msg = str(e.value)
    assert 'loss_contrast=nan' in msg and 'iteration 3' in msg
    # the batch's 4 images, by id and path
    assert msg.count('.jpg') == 4 and str(tmp_path / 'imgs') in msg
    probe = [h for h in runner.hooks if isinstance(h, WeightProbeHook)][0]
    assert 3 not in probe.after  # no update was made with the NaN loss
    assert torch.isfinite(runner.model.backbone.conv1.weight).all()


def test_nan_loss_skips_the_step_when_configured(tmp_path):
    runner = _runner(tmp_path, 'skip')
    runner.train()
    assert runner.iter == 5
    probe = [h for h in runner.hooks if isinstance(h, WeightProbeHook)][0]
    # iteration 3 changed nothing, its neighbours did (no silent no-op run)
    assert torch.equal(probe.before[3], probe.after[3])
    assert not torch.equal(probe.before[2], probe.after[2])
    assert not torch.equal(probe.before[4], probe.after[4])
    for p in runner.model.parameters():
        assert torch.isfinite(p).all()
    hub = runner.message_hub.log_scalars
    assert hub['train/skipped_steps'].current() == 1
