# Copyright (c) mmselfdet contributors. All rights reserved.
"""Test-only hooks that inject faults into a real training run. A config
loads them with ``custom_imports=dict(imports=['mmselfdet',
'tests.test_reliability.fault_hooks'])`` (the repository on PYTHONPATH)."""
import os
import signal
import time

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmselfdet.registry import HOOKS


@HOOKS.register_module(force=True)
class TestFaultHook(Hook):
    """At iteration ``at_iter`` (1-based) on rank ``rank``: ``'kill'``
    SIGKILLs the process after the iteration, ``'raise'`` raises before it,
    ``'hang'`` sleeps forever before it, ``'nan'`` makes ``loss_key`` NaN
    in that iteration's loss."""

    priority = 'HIGHEST'

    def __init__(self, action: str, at_iter: int, rank: int = 0,
                 loss_key: str = 'loss_contrast') -> None:
        self.action, self.at_iter, self.rank = action, at_iter, rank
        self.loss_key = loss_key

    def _mine(self, runner) -> bool:
        return runner.iter + 1 == self.at_iter and get_rank() == self.rank

    def before_train(self, runner) -> None:
        if self.action != 'nan':
            return
        model = getattr(runner.model, 'module', runner.model)
        loss, hook = model.loss, self

        def nan_loss(*args, **kwargs):
            out = loss(*args, **kwargs)
            if hook._mine(runner):
                out[hook.loss_key] = out[hook.loss_key] * float('nan')
            return out

        model.loss = nan_loss

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self._mine(runner):
            return
        if self.action == 'raise':
            raise RuntimeError(f'TestFaultHook: injected crash on rank '
                               f'{get_rank()} at iteration {self.at_iter}')
        if self.action == 'hang':
            while True:
                time.sleep(1)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._mine(runner) and self.action == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module(force=True)
class TestStatefulHook(Hook):
    """A hook with state saved in checkpoints (like a self-training round
    counter) that also logs a draw of torch's RNG every iteration
    (``rng_probe``) and its counter (``hook_count``)."""

    def __init__(self) -> None:
        self.count = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.count += 1
        runner.message_hub.update_scalar('train/hook_count', self.count)
        runner.message_hub.update_scalar('train/rng_probe',
                                         float(torch.rand(())))

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        checkpoint['test_hook_count'] = self.count

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        self.count = checkpoint['test_hook_count']
