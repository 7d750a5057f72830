# Copyright (c) mmselfdet contributors. All rights reserved.
"""Method-agnostic helpers for the semantic model tests (issue 15).

They answer three questions about any pretraining algorithm without knowing
its internals:

* does every sample count, and only through its own pixels?
  (:func:`bn_eval`, :func:`input_grads`, :func:`sample_grad`,
  :func:`perturb_sample`, :func:`changed_rows`);
* which embeddings and per-sample loss terms did the step produce?
  (:func:`record_calls` around the head's ``loss``, then :func:`head_terms`,
  which turns the recorded calls into per-sample rows with reference
  formulas written here, not taken from the heads);
* what would the momentum encoder compute after its update?
  (:func:`ema_copy`, an independent EMA step on a copy).

The reference formulas (:func:`infonce_rows`, :func:`byol_rows`) are plain
tensor maths in float64 (no ``F.cross_entropy``), so a head that drifts from
the formula is caught. A head type added later gets a row function in
:data:`TERM_FNS`.
"""
import contextlib
import copy
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

Rows = Dict[str, Tensor]  # name -> (N, ...) one row per sample


def bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer of ``model`` (momentum copies included) in
    eval mode, leaving the rest in its mode. Returns how many were set.

    With running statistics a sample's output depends on that sample only,
    which the independence checks need.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
            n += 1
    return n


def input_grads(inputs: Dict[str, Tensor],
                views: Iterable[str]) -> Dict[str, Tensor]:
    """A copy of the preprocessed ``inputs`` whose ``views`` require grad
    (leaves, so ``.grad`` holds the gradient per pixel after backward)."""
    views = set(views)
    return {v: x.detach().clone().requires_grad_(v in views)
            for v, x in inputs.items()}


def sample_grad(grad: Optional[Tensor]) -> Tensor:
    """Sum of |gradient| per sample: (N, ...) -> (N,); raises for None."""
    if grad is None:
        raise ValueError('no gradient reached this input')
    return grad.abs().reshape(grad.size(0), -1).sum(dim=1)  # (N,)


def grid_cells(x: Tensor, grid: int) -> Tensor:
    """Sum of |x| per cell of a ``grid x grid`` tiling of (N, C, H, W):
    -> (N, grid * grid), cell ``row * grid + col`` (jigsaw order)."""
    n, _, h, w = x.shape
    ph, pw = h // grid, w // grid
    cells = x.abs()[:, :, :grid * ph, :grid * pw]
    cells = cells.reshape(n, -1, grid, ph, grid, pw)  # (N, C, g, ph, g, pw)
    return cells.sum(dim=(1, 3, 5)).reshape(n, grid * grid)  # (N, g * g)


def perturb_sample(inputs: Dict[str, Tensor], view: str, index: int,
                   seed: int = 1234) -> Dict[str, Tensor]:
    """A copy of ``inputs`` where sample ``index`` of ``view`` is replaced by
    fresh N(0, 1) pixels (the scale of normalised images)."""
    out = {v: x.detach().clone() for v, x in inputs.items()}
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(out[view][index].shape, generator=g)
    out[view][index] = noise.to(out[view].dtype)
    return out


def changed_rows(a: Tensor, b: Tensor, atol: float = 1e-5) -> List[int]:
    """Indices of the rows (dim 0) where ``a`` and ``b`` differ by more
    than ``atol``."""
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {tuple(a.shape)} {tuple(b.shape)}')
    diff = (a.detach().double() - b.detach().double()).abs()
    worst = diff.reshape(diff.size(0), -1).amax(dim=1)  # (N,)
    return torch.nonzero(worst > atol)[:, 0].tolist()


class Call:
    """One recorded method call: ``args``, ``kwargs`` and ``result``."""

    def __init__(self, args: tuple, kwargs: dict, result) -> None:
        self.args, self.kwargs, self.result = args, kwargs, result

    def arg(self, pos: int, name: str, default=None):
        """Argument by position or keyword."""
        if len(self.args) > pos:
            return self.args[pos]
        return self.kwargs.get(name, default)


@contextlib.contextmanager
def record_calls(obj: object, name: str = 'loss') -> Iterator[List[Call]]:
    """Record every call of ``obj.<name>`` inside the block (the instance
    attribute shadows the method; removed on exit)."""
    calls: List[Call] = []
    method = getattr(obj, name)

    def wrapper(*args, **kwargs):
        result = method(*args, **kwargs)
        calls.append(Call(args, kwargs, result))
        return result

    setattr(obj, name, wrapper)
    try:
        yield calls
    finally:
        delattr(obj, name)


def infonce_rows(query: Tensor, key: Tensor, queue: Tensor,
                 temperature: float) -> Tensor:
    """Per-sample InfoNCE ``-log(e^{q.k/T} / (e^{q.k/T} + sum_j e^{q.n_j/T}))``
    with q and k L2-normalised (float64): (N, D), (N, D), (K, D) -> (N,)."""
    q = query.double() / query.double().norm(dim=1, keepdim=True)
    k = key.double() / key.double().norm(dim=1, keepdim=True)
    pos = (q * k).sum(dim=1) / temperature  # (N,)
    neg = q @ queue.double().t() / temperature  # (N, K)
    return torch.log(pos.exp() + neg.exp().sum(dim=1)) - pos  # (N,)


def byol_rows(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample BYOL regression ``2 - 2 cos(pred, target)`` (float64):
    (N, D), (N, D) -> (N,)."""
    p, t = pred.double(), target.double()
    cos = (p * t).sum(dim=1) / (p.norm(dim=1) * t.norm(dim=1))  # (N,)
    return 2 - 2 * cos


def _contrastive_rows(head: nn.Module, call: Call, name: str) -> Rows:
    query, key, queue = call.arg(0, 'query'), call.arg(1, 'key'), \
        call.arg(2, 'negatives')
    weight = call.arg(3, 'weight')
    weight = head.loss_weight if weight is None else weight
    prefix = call.arg(4, 'prefix')
    prefix = head.prefix if prefix is None else prefix
    loss = weight * infonce_rows(query, key, queue, head.temperature)
    reported = call.result[f'{prefix}loss_contrast']
    torch.testing.assert_close(loss.mean(), reported.double(), rtol=1e-5,
                               atol=1e-6, msg=f'{name}: mean of rows')
    return {f'{prefix}q': F.normalize(query, dim=1), f'{prefix}k': key,
            f'{prefix}loss': loss}


def _byol_rows(head: nn.Module, call: Call, name: str) -> Rows:
    online, target = call.arg(0, 'online'), call.arg(1, 'target')
    pred = head.predictor(online)  # (N, D), per sample with BN in eval
    loss = head.loss_weight * byol_rows(pred, target)
    torch.testing.assert_close(loss.mean(), call.result['loss_byol'].double(),
                               rtol=1e-5, atol=1e-6,
                               msg=f'{name}: mean of rows')
    return {f'{name}online': online, f'{name}target': target,
            f'{name}pred': pred, f'{name}loss': loss}


TERM_FNS: Dict[str, Callable[[nn.Module, Call, str], Rows]] = {
    'QueueContrastiveHead': _contrastive_rows,
    'BYOLHead': _byol_rows,
}


def head_terms(head: nn.Module, calls: List[Call]) -> Rows:
    """Per-sample embeddings and loss terms of the recorded ``head.loss``
    calls, keyed ``<prefix or call#>_<q|k|online|target|pred|loss>``.

    Checks on the way that each call's reported loss is the mean of its
    rows, so the rows are the loss the model optimised, split per sample.
    """
    fn = TERM_FNS.get(type(head).__name__)
    if fn is None:
        raise KeyError(f'no per-sample row function for {type(head).__name__}'
                       f'; add one to TERM_FNS ({__name__})')
    rows: Rows = {}
    for i, call in enumerate(calls):
        new = fn(head, call, f'call{i}_')
        clash = set(new) & set(rows)
        if clash:
            raise KeyError(f'two head calls produced {sorted(clash)}')
        rows.update(new)
    return rows


@torch.no_grad()
def ema_copy(ema: nn.Module, online: nn.Module, momentum: float) -> nn.Module:
    """The momentum encoder after one more update, computed independently:
    a copy of ``ema.module`` with ``p <- p + momentum * (p_online - p)``
    (mmengine's convention, a copy on the very first step) and the online
    buffers (BN statistics) copied.

    Args:
        ema: The model's EMA wrapper (``steps`` and ``module``).
        online: The online modules in the EMA's order (a Sequential).
        momentum: The weight of the online network for this step.
    """
    enc = copy.deepcopy(ema.module)
    first = int(ema.steps) == 0
    for (name, p), (name_o, p_o) in zip(enc.named_parameters(),
                                        online.named_parameters()):
        assert name == name_o, (name, name_o)
        p.copy_(p_o if first else p + momentum * (p_o - p))
    for b, b_o in zip(enc.buffers(), online.buffers()):
        b.copy_(b_o)
    return enc
