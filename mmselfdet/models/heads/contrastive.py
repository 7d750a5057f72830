# Copyright (c) mmselfdet contributors. All rights reserved.
"""InfoNCE against a queue of negatives (MoCo), the loss every
queue-based method shares."""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class QueueContrastiveHead(nn.Module):
    """InfoNCE loss with one positive key and a queue of negatives.

    Besides ``loss_contrast`` it reports two metrics (not optimised):
    ``contrast_acc`` (top-1 of the positive among 1 + K candidates, %) and
    ``contrast_chance``, the loss of an encoder that learned nothing,
    ``ln(1 + K)``. A run whose loss never falls below the chance level has
    not learned (docs/methods.md §6b).

    Args:
        temperature (float): Softmax temperature T. Defaults to 0.2.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        prefix (str): Key prefix, e.g. ``'p2_'`` for per-level losses.
    """

    def __init__(self,
                 temperature: float = 0.2,
                 loss_weight: float = 1.0,
                 prefix: str = '') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.prefix = prefix

    def forward(self, query: Tensor, key: Tensor, negatives: Tensor) -> Tensor:
        """Logits (N, 1 + K): the positive first, then the queue."""
        query = F.normalize(query, dim=1)  # (N, D)
        key = F.normalize(key, dim=1)  # (N, D)
        pos = (query * key).sum(dim=1, keepdim=True)  # (N, 1)
        neg = query @ negatives.t().to(query.dtype)  # (N, K)
        return torch.cat([pos, neg], dim=1) / self.temperature  # (N, 1 + K)

    def loss(self,
             query: Tensor,
             key: Tensor,
             negatives: Tensor,
             weight: Optional[float] = None,
             prefix: Optional[str] = None) -> Dict[str, Tensor]:
        """Compute the InfoNCE loss and metrics.

        Args:
            query (Tensor): (N, D) online embeddings (normalised here).
            key (Tensor): (N, D) momentum embeddings, no gradient.
            negatives (Tensor): (K, D) normalised queue.
            weight (float, optional): Overrides ``loss_weight``.
            prefix (str, optional): Overrides ``prefix`` (e.g. ``'p3_'``
                for the loss of one level).
        """
        logits = self(query, key.detach(), negatives.detach())
        labels = torch.zeros(logits.size(0), dtype=torch.long,
                             device=logits.device)
        w = self.loss_weight if weight is None else weight
        loss = F.cross_entropy(logits, labels) * w
        with torch.no_grad():
            acc = (logits.argmax(dim=1) == 0).float().mean() * 100
        p = self.prefix if prefix is None else prefix
        return {
            f'{p}loss_contrast': loss,
            f'{p}contrast_acc': acc,
            f'{p}contrast_chance': torch.tensor(
                math.log(logits.size(1)), device=logits.device) * w,
        }
