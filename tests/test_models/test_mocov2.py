# Copyright (c) mmselfdet contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.config import Config

from mmselfdet.registry import MODELS
from .helpers import finite, params_without_grad, random_views


def tiny_moco_cfg(repo_root, queue_len=16):
    cfg = Config.fromfile(
        f'{repo_root}/configs/mocov2/mocov2_r18_1xb32-180it_toy.py')
    model = copy.deepcopy(cfg.model)
    model.queue_len = queue_len
    return model


def test_mocov2_two_steps_train(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_moco_cfg(repo_root))
    model.init_weights()
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.1, momentum=0.9)
    ptrs = []
    for step in range(2):
        data = model.data_preprocessor(random_views(n=4, size=32), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        assert 'loss_contrast' in losses
        opt.zero_grad()
        losses['loss_contrast'].backward()
        if step == 0:
            # every trainable parameter gets a gradient; the momentum
            # encoder is frozen (no gradient by design)
            assert params_without_grad(model) == []
            assert all(p.grad is None
                       for p in model.momentum_encoder.parameters())
            assert all(not p.requires_grad
                       for p in model.momentum_encoder.parameters())
        opt.step()
        ptrs.append(int(model.queue.ptr[0]))
    assert ptrs == [4, 8]
    # the momentum encoder follows the online network (EMA), not equal to it
    online = model.backbone.conv1.weight
    key = model.momentum_encoder.module[0].conv1.weight
    assert not torch.equal(online, key)
    assert int(model.momentum_encoder.steps) == 2


def test_mocov2_tensor_mode_and_errors(repo_root):
    model = MODELS.build(tiny_moco_cfg(repo_root))
    data = model.data_preprocessor(random_views(n=2, size=32), False)
    feats = model(**data, mode='tensor')
    assert set(feats) == {'view1', 'view2'}
    assert feats['view1'][-1].shape == (2, 512, 1, 1)
    assert model(torch.randn(2, 3, 32, 32), mode='tensor')[-1].shape[1] == 512
    with pytest.raises(RuntimeError, match='"loss" and "tensor"'):
        model(**data, mode='predict')
    bad = model.data_preprocessor(
        random_views(n=2, size=32, names=('view1', 'other')), True)
    with pytest.raises(KeyError, match='missing'):
        model(**bad, mode='loss')
    cfg = tiny_moco_cfg(repo_root)
    cfg.views = ('a', 'b', 'c')
    with pytest.raises(ValueError, match='two views'):
        MODELS.build(cfg)
