# Copyright (c) mmselfdet contributors. All rights reserved.
"""Optimizer wrappers that stop, or skip and count, a step whose loss or
gradient is not finite; never silently."""
import logging
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from mmselfdet.registry import OPTIM_WRAPPERS

POLICIES = ('stop', 'skip')


def batch_image_names(data_samples) -> List[str]:
    """``img_id:img_path`` of every image of a batch.

    Args:
        data_samples: The batch's data samples: a list, a dict of lists (one
            per view; the first view is read, all views come from the same
            images) or a collated batch ``{'data_samples': ...}``.

    Returns:
        list[str]: One ``img_id:img_path`` per image (``?`` where the meta
        information lacks one).
    """
    if isinstance(data_samples, dict) and 'data_samples' in data_samples:
        data_samples = data_samples['data_samples']
    if isinstance(data_samples, dict):
        data_samples = next(iter(data_samples.values()), None)
    names = []
    for s in data_samples or []:
        meta = getattr(s, 'metainfo', {})
        names.append(f"{meta.get('img_id', '?')}:{meta.get('img_path', '?')}")
    return names


def _term(value) -> Optional[torch.Tensor]:
    """A loss term reduced as mmengine's ``BaseModel.parse_losses`` does."""
    if torch.is_tensor(value):
        return value.detach().mean()
    if isinstance(value, (list, tuple)) and value and all(
            torch.is_tensor(v) for v in value):
        return sum(v.detach().mean() for v in value)
    return None


def _all_finite(tensors: List[torch.Tensor]) -> torch.Tensor:
    """One 0-d bool tensor: every element of every tensor is finite (NaN and
    inf propagate through the max-abs norm, which cannot overflow)."""
    inf = float('inf')
    if hasattr(nn.utils, 'get_total_norm'):  # torch >= 2.6
        return torch.isfinite(nn.utils.get_total_norm(tensors, inf))
    return torch.stack([torch.isfinite(t).all() for t in tensors]).all()


class NonFiniteGuardMixin:
    """Checks a step's loss (each ``loss`` term) before the backward pass and
    its gradients before the optimizer step.

    On a non-finite value (in a distributed run the ranks agree through one
    ``all_reduce`` per check, so they all stop or all skip):

    * ``policy='stop'`` (default) raises ``FloatingPointError`` naming the
      terms and their values (or the parameters with non-finite gradients),
      the iteration (1-based, as logged), the rank and the
      ``img_id:img_path`` of every image of the rank's batch; no parameter
      or optimizer state has changed;
    * ``policy='skip'`` logs the same diagnostic as a warning and skips the
      optimizer step (no update, no momentum or weight decay, no loss-scale
      update). A non-finite loss is replaced by a zero loss so that the
      backward pass, and with it distributed gradient synchronisation, still
      runs on every rank. Updates made inside the forward pass (queues,
      momentum encoders) have already happened. After ``max_skips`` skipped
      steps the run stops as with ``'stop'``. The count is logged as
      ``skipped_steps`` from the first skip on.

    The loss terms and the batch's data samples are read from the model's
    forward output inside :meth:`optim_context` (a forward hook, removed when
    the context exits), so the diagnostic names the term, not only the sum.

    Args:
        policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): Skipped steps allowed per run. Defaults to 10.
    """

    #: Check the gradients before the step (the AMP variant leaves
    #: non-finite gradients to its loss scaler, which skips those steps).
    check_grads = True

    def __init__(self, *args, policy: str = 'stop', max_skips: int = 10,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0
        self._skip_this_step = False
        self._forward: Optional[tuple] = None  # (data_samples, losses)
        self._model: Optional[nn.Module] = None
        self.set_policy(policy, max_skips)

    def set_policy(self, policy: str = 'stop', max_skips: int = 10) -> None:
        """Set what a non-finite step does (the skip count is kept).

        Args:
            policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
            max_skips (int): Skipped steps allowed per run. Defaults to 10.
        """
        if policy not in POLICIES:
            raise ValueError(f'{type(self).__name__}: policy must be one of '
                             f'{POLICIES}, got {policy!r}')
        self.policy, self.max_skips = policy, int(max_skips)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """The wrapped context, recording the forward's losses and samples.

        Args:
            model (nn.Module): The training model.
        """
        self._model, self._forward = model, None
        handle = model.register_forward_hook(self._record_forward,
                                             with_kwargs=True)
        try:
            with super().optim_context(model):
                yield
        finally:
            handle.remove()

    def _record_forward(self, module, args, kwargs, output) -> None:
        if isinstance(output, dict):
            samples = kwargs.get('data_samples',
                                 args[1] if len(args) > 1 else None)
            self._forward = (samples, output)

    def update_params(self, loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        """Check the loss, then backward and (unless skipped) step."""
        try:
            terms = self._loss_terms(loss)
            finite = _all_finite(list(terms.values()))
            if self._agree_nonfinite(finite):
                bad = {k: float(v) for k, v in terms.items()
                       if not bool(torch.isfinite(v))}
                self._nonfinite('loss', ', '.join(
                    f'{k}={v}' for k, v in bad.items()) if bad else '')
                loss = self._zero_loss(loss)
                self._skip_this_step = True
            super().update_params(loss, step_kwargs, zero_kwargs)
        finally:
            self._skip_this_step, self._forward = False, None
            if self.skipped_steps:
                self.message_hub.update_scalar('train/skipped_steps',
                                               float(self.skipped_steps))

    def step(self, **kwargs) -> None:
        """The wrapped step, unless this step is skipped."""
        if self._skip_this_step:
            return
        if self.check_grads:
            every = [p for g in self.optimizer.param_groups
                     for p in g['params']]
            params = [p for p in every if p.grad is not None]
            finite = _all_finite([p.grad.detach() for p in params]) \
                if params else torch.ones((), dtype=torch.bool,
                                          device=every[0].device)
            if self._agree_nonfinite(finite):
                self._nonfinite('gradient', self._bad_grad_names(params))
                return
        super().step(**kwargs)

    def _loss_terms(self, loss: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``loss`` (the sum) and every ``loss*`` term of the forward."""
        terms = {'loss': loss.detach()}
        losses = self._forward[1] if self._forward else {}
        for k, v in losses.items():
            t = _term(v)
            if 'loss' in k and t is not None:
                terms[k] = t.to(loss.device)
        return terms

    def _agree_nonfinite(self, finite: torch.Tensor) -> bool:
        """True when this rank or any other rank saw a non-finite value."""
        flag = (~finite).float().reshape(1)
        if get_world_size() > 1:
            all_reduce(flag, op='max')
        return bool(flag.item() > 0)

    def _bad_grad_names(self, params: List[nn.Parameter]) -> str:
        bad = [p for p in params if not bool(torch.isfinite(p.grad).all())]
        if not bad:
            return ''
        names = {id(p): n for n, p in self._model.named_parameters()} \
            if self._model is not None else {}
        shown = ', '.join(names.get(id(p), f'<parameter {tuple(p.shape)}>')
                          for p in bad[:5])
        more = f' and {len(bad) - 5} more' if len(bad) > 5 else ''
        return f'{shown}{more} ({len(bad)} parameters)'

    def _zero_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """A zero loss connected to every trainable parameter (their
        gradients are exactly 0)."""
        params = (self._model.parameters() if self._model is not None else
                  (p for g in self.optimizer.param_groups
                   for p in g['params']))
        zero = sum(p.sum() for p in params if p.requires_grad)
        return zero * 0.0 if torch.is_tensor(zero) else loss.new_zeros(())

    def _nonfinite(self, what: str, detail: str) -> None:
        """Raise (stop, or skips used up) or log and count a skip."""
        it = self.message_hub.get_info('iter')
        samples = self._forward[0] if self._forward else None
        msg = (f'non-finite {what} at iteration '
               f'{"?" if it is None else it + 1} on rank {get_rank()}: ' +
               (detail or 'this rank is finite, another rank is not') +
               f'; images of this batch: {batch_image_names(samples)}')
        name = type(self).__name__
        if self.policy == 'stop' or self.skipped_steps >= self.max_skips:
            extra = '' if self.policy == 'stop' else (
                f' ({self.skipped_steps} steps skipped already, max_skips='
                f'{self.max_skips})')
            raise FloatingPointError(f'{name}: {msg}{extra}')
        self.skipped_steps += 1
        print_log(f'{name}: skipped the step, {msg} ({self.skipped_steps} '
                  'skipped so far)', logger='current', level=logging.WARNING)


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(NonFiniteGuardMixin, OptimWrapper):
    """mmengine's ``OptimWrapper`` that stops, or skips and counts, a step
    with a non-finite loss or gradient (:class:`NonFiniteGuardMixin`).

    Example:
        >>> optim_wrapper = dict(type='NonFiniteGuardOptimWrapper',
        ...                      policy='skip', max_skips=10,
        ...                      optimizer=dict(type='SGD', lr=0.03))

    Args:
        policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): Skipped steps allowed per run. Defaults to 10.
        **kwargs: ``OptimWrapper``'s arguments.
    """


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardAmpOptimWrapper(NonFiniteGuardMixin, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` that stops, or skips and counts, a step
    with a non-finite loss (:class:`NonFiniteGuardMixin`). Non-finite
    gradients of a finite loss are left to the loss scaler, which skips
    those steps and lowers the scale (normal mixed-precision operation,
    neither counted nor stopped).

    Args:
        policy (str): ``'stop'`` or ``'skip'``. Defaults to 'stop'.
        max_skips (int): Skipped steps allowed per run. Defaults to 10.
        **kwargs: ``AmpOptimWrapper``'s arguments.
    """

    check_grads = False
