# Copyright (c) mmselfdet contributors. All rights reserved.
"""Shared helpers of the model tests."""
from typing import Dict, Iterable, List

import torch
import torch.nn as nn


def random_views(n: int = 4, size: int = 32,
                 names=('view1', 'view2')) -> dict:
    """A collated multi-view batch as the dataloader gives it."""
    g = torch.Generator().manual_seed(0)
    return {
        'inputs': {v: [torch.randint(0, 255, (3, size, size), generator=g,
                                     dtype=torch.uint8) for _ in range(n)]
                   for v in names},
        'data_samples': None,
    }


def params_without_grad(model: nn.Module,
                        exclude: Iterable[str] = ()) -> List[str]:
    """Names of trainable parameters whose .grad is None or all zero."""
    bad = []
    for name, p in model.named_parameters():
        if not p.requires_grad or any(name.startswith(e) for e in exclude):
            continue
        if p.grad is None or not torch.isfinite(p.grad).all() or \
                p.grad.abs().sum() == 0:
            bad.append(name)
    return bad


def finite(losses: Dict[str, torch.Tensor]) -> bool:
    return all(torch.isfinite(v).all() for v in losses.values())


def momentum_model_and_sgd(cfg: dict, max_steps: int = 10, lr: float = 0.05):
    """Build a model with a momentum encoder (seed 0, initialised, train
    mode, EMA schedule of ``max_steps``) and an SGD over its trainable
    parameters, for the few-step training tests."""
    from mmselfdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    model.target_net.max_steps = max_steps
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=lr)
    return model, opt
