# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stop or skip a training step whose loss is not finite, never silently."""
import logging
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmselfdet.registry import HOOKS


def batch_image_names(data_batch) -> List[str]:
    """``img_id:img_path`` of every image of a collated batch (the first
    view of a multi-view batch: all views come from the same images)."""
    samples = data_batch.get('data_samples') if isinstance(
        data_batch, dict) else None
    if isinstance(samples, dict):
        samples = next(iter(samples.values()), None)
    names = []
    for s in samples or []:
        meta = getattr(s, 'metainfo', {})
        names.append(f"{meta.get('img_id', '?')}:{meta.get('img_path', '?')}")
    return names


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every loss term before the optimizer sees it.

    The model's ``parse_losses`` is wrapped in ``before_train``: every term
    of the parsed log variables (``loss`` and each ``loss_*``) is checked,
    and in a distributed run the ranks agree through one ``all_reduce`` so
    that they all stop or all skip. On a non-finite term:

    * ``policy='stop'`` (default) raises ``FloatingPointError`` naming the
      terms and their values, the iteration (1-based, as logged), the rank
      and the ``img_id:img_path`` of every image of the rank's batch;
    * ``policy='skip'`` logs the same diagnostic as a warning, backpropagates
      a zero loss (so distributed gradient hooks still fire on every rank)
      and skips the optimizer step (no update, no momentum or weight decay);
      updates made inside the forward pass (queues, momentum encoders) have
      already happened. After ``max_skips`` skipped steps the run stops as
      with ``'stop'``. Skipped steps are logged as ``skipped_steps``.

    Non-finite gradients of a finite loss are not checked (mixed precision's
    ``AmpOptimWrapper`` skips those steps itself).

    Args:
        policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): Skipped steps allowed per run. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, policy: str = 'stop', max_skips: int = 10) -> None:
        if policy not in ('stop', 'skip'):
            raise ValueError(
                f"NonFiniteLossHook: policy must be 'stop' or 'skip', got "
                f'{policy!r}')
        self.policy = policy
        self.max_skips = int(max_skips)
        self.skipped = 0
        self._skip_step = False
        self._batch = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        parse_losses, hook = model.parse_losses, self

        def guarded_parse_losses(losses):
            loss, log_vars = parse_losses(losses)
            if hook._check(runner, log_vars):
                loss = sum(p.sum() for p in model.parameters()
                           if p.requires_grad) * 0.0
            if hook.skipped:
                log_vars['skipped_steps'] = torch.tensor(float(hook.skipped))
            return loss, log_vars

        model.parse_losses = guarded_parse_losses
        optim_wrapper, step = runner.optim_wrapper, runner.optim_wrapper.step

        def guarded_step(*args, **kwargs):
            if hook._skip_step:
                return None
            return step(*args, **kwargs)

        optim_wrapper.step = guarded_step

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._batch, self._skip_step = data_batch, False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        self._batch = None

    def _check(self, runner, log_vars: dict) -> bool:
        """Return True when this step must be skipped; raise to stop."""
        bad = {k: float(v.detach().float().mean()) for k, v in
               log_vars.items() if 'loss' in k and torch.is_tensor(v)
               and not bool(torch.isfinite(v.detach()).all())}
        flag = torch.tensor([1.0 if bad else 0.0],
                            device=next(iter(log_vars.values())).device)
        if get_world_size() > 1:
            all_reduce(flag, op='max')
        if float(flag) == 0:
            return False
        msg = (f'non-finite loss at iteration {runner.iter + 1} on rank '
               f'{get_rank()}: ' +
               (', '.join(f'{k}={v}' for k, v in bad.items())
                if bad else 'this rank is finite, another rank is not') +
               f'; images of this batch: {batch_image_names(self._batch)}')
        if self.policy == 'stop' or self.skipped >= self.max_skips:
            extra = '' if self.policy == 'stop' else (
                f' ({self.skipped} steps skipped already, max_skips='
                f'{self.max_skips})')
            raise FloatingPointError(f'NonFiniteLossHook: {msg}{extra}')
        self.skipped += 1
        self._skip_step = True
        print_log(f'NonFiniteLossHook: skipped the step, {msg} '
                  f'({self.skipped} skipped so far)', logger='current',
                  level=logging.WARNING)
        return True
