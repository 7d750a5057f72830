# Copyright (c) mmselfdet contributors. All rights reserved.
import torch

from mmselfdet.registry import MODELS
from .helpers import (finite, momentum_model_and_sgd, params_without_grad,
                      random_views)


def tiny_byol():
    return dict(
        type='BYOL',
        momentum=0.01,
        end_momentum=0.0,
        backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='MLPProjector', in_channels=512, hid_channels=64,
                  out_channels=16, norm_cfg=dict(type='BN1d')),
        head=dict(type='BYOLHead', predictor=dict(
            type='MLPProjector', in_channels=16, hid_channels=64,
            out_channels=16, norm_cfg=dict(type='BN1d'),
            with_avg_pool=False)))


def test_byol_two_steps_gradients_and_target_ema():
    model, opt = momentum_model_and_sgd(tiny_byol())
    for step in range(2):
        data = model.data_preprocessor(random_views(n=4, size=32), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        assert 0 <= float(losses['loss_byol']) <= 8
        opt.zero_grad()
        losses['loss_byol'].backward()
        if step == 0:
            assert params_without_grad(model) == []
            assert all(p.grad is None for p in model.target_net.parameters())
        opt.step()
    assert int(model.target_net.steps) == 2
    # the target follows the online net slowly: not equal after a step
    assert not torch.equal(model.backbone.conv1.weight,
                           model.target_net.module[0].conv1.weight)


def test_byol_head_loss_values():
    head = MODELS.build(dict(type='BYOLHead', predictor=dict(
        type='MLPProjector', in_channels=4, hid_channels=4, out_channels=4,
        num_layers=1, with_avg_pool=False)))
    torch.nn.init.eye_(head.predictor.mlp[0].weight)
    torch.nn.init.zeros_(head.predictor.mlp[0].bias)
    x = torch.randn(3, 4)
    assert float(head.loss(x, x)['loss_byol']) < 1e-5  # identical -> 0
    assert abs(float(head.loss(x, -x)['loss_byol']) - 4.0) < 1e-4
