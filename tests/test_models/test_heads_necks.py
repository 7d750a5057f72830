# Copyright (c) mmselfdet contributors. All rights reserved.
import math

import pytest
import torch

from mmselfdet.models.heads import QueueContrastiveHead
from mmselfdet.models.necks import MLPProjector


def test_mlp_projector_shapes_and_norm():
    neck = MLPProjector(16, 32, 8)
    x = (torch.randn(2, 4, 5, 5), torch.randn(2, 16, 3, 3))
    assert neck(x).shape == (2, 8)
    assert neck(torch.randn(2, 16)).shape == (2, 8)
    bn = MLPProjector(16, 32, 8, num_layers=3, norm_cfg=dict(type='BN1d'))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm1d) for m in bn.modules())
    assert n_bn == 2
    assert bn(torch.randn(4, 16)).shape == (4, 8)
    with pytest.raises(ValueError):
        MLPProjector(4, 4, 4, num_layers=0)


def test_contrastive_head_loss_and_metrics():
    head = QueueContrastiveHead(temperature=0.2)
    q = torch.randn(6, 8, requires_grad=True)
    k = torch.randn(6, 8)
    neg = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    out = head.loss(q, k, neg)
    assert set(out) == {'loss_contrast', 'contrast_acc', 'contrast_chance'}
    assert math.isclose(float(out['contrast_chance']), math.log(21), rel_tol=1e-6)
    out['loss_contrast'].backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    # a query equal to its key and far from the negatives beats chance
    k2 = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    easy = head.loss(k2 * 3, k2, -k2.repeat(4, 1))
    assert float(easy['loss_contrast']) < math.log(25)
    assert float(easy['contrast_acc']) == 100.0
    with pytest.raises(ValueError):
        QueueContrastiveHead(temperature=0)
