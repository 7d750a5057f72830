# Copyright (c) mmselfdet contributors. All rights reserved.
"""BYOL's regression loss with its predictor, shared by BYOL, SoCo and the
end-to-end object-level method."""
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.utils import ConfigType
from torch import Tensor

from mmselfdet.registry import MODELS


@MODELS.register_module()
class BYOLHead(nn.Module):
    """Predict the target projection from the online one: ``2 - 2 cos``.

    Args:
        predictor (dict): Predictor MLP config (e.g. :class:`MLPProjector`
            256 -> 4096 -> 256 with BN, ``with_avg_pool=False``).
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, predictor: ConfigType, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.predictor = MODELS.build(predictor)
        self.loss_weight = loss_weight

    def loss(self, online: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Args: online (N, D) projections (with grad), target (N, D)
        projections of the other view from the target network.

        Returns ``loss_byol`` (mean over N) and the mean cosine similarity
        ``byol_cos`` (a metric)."""
        pred = F.normalize(self.predictor(online), dim=1)  # (N, D)
        target = F.normalize(target.detach(), dim=1)  # (N, D)
        cos = (pred * target).sum(dim=1)  # (N,)
        loss = (2 - 2 * cos).mean() * self.loss_weight
        with torch.no_grad():
            mean_cos = cos.mean()
        return dict(loss_byol=loss, byol_cos=mean_cos)
