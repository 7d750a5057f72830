# Copyright (c) mmselfdet contributors. All rights reserved.
"""Shared model utilities: feature_queue.py (FeatureQueue), dist.py
(shuffle-BN), momentum.py (EMA)."""
import pytest
import torch
import torch.nn as nn

from mmselfdet.models.utils import (FeatureQueue, batch_shuffle,
                                    batch_unshuffle, build_momentum_encoder)


def test_queue_enqueue_moves_pointer_and_wraps():
    q = FeatureQueue(length=10, feat_dim=4)
    assert q.buffer.shape == (1, 10, 4)
    assert torch.allclose(q.buffer.norm(dim=-1), torch.ones(1, 10))
    keys = torch.arange(24, dtype=torch.float).view(6, 4)
    q.enqueue(keys)
    assert int(q.ptr[0]) == 6
    assert torch.equal(q.get()[:6], keys)
    keys2 = -torch.arange(24, dtype=torch.float).view(6, 4) - 1
    q.enqueue(keys2)  # 6 + 6 = 12 -> wraps to 2
    assert int(q.ptr[0]) == 2
    assert torch.equal(q.get()[6:10], keys2[:4])
    assert torch.equal(q.get()[0:2], keys2[4:6])
    # more keys than the queue holds: the last `length` survive
    big = torch.randn(25, 4)
    q.enqueue(big)
    assert int(q.ptr[0]) == 2
    assert torch.equal(torch.roll(q.get(), -2, 0), big[-10:])


def test_queue_get_is_a_copy():
    q = FeatureQueue(length=8, feat_dim=3)
    snap = q.get()
    q.enqueue(torch.zeros(4, 3))
    assert not torch.equal(snap, q.get())


def test_queue_multi_and_state_dict():
    q = FeatureQueue(length=8, feat_dim=3, num_queues=3)
    q.enqueue(torch.ones(2, 3), index=1)
    assert q.ptr.tolist() == [0, 2, 0]
    sd = q.state_dict()
    assert set(sd) == {'buffer', 'ptr'}
    q2 = FeatureQueue(length=8, feat_dim=3, num_queues=3)
    q2.load_state_dict(sd)
    assert torch.equal(q2.buffer, q.buffer) and torch.equal(q2.ptr, q.ptr)


def test_queue_rejects_bad_shapes():
    with pytest.raises(ValueError):
        FeatureQueue(0, 4)
    q = FeatureQueue(8, 4)
    with pytest.raises(ValueError, match=r'\(N, 4\)'):
        q.enqueue(torch.zeros(2, 5))


def test_batch_shuffle_roundtrip_single_process():
    torch.manual_seed(0)
    x = torch.arange(8, dtype=torch.float).view(8, 1)
    shuffled, idx = batch_shuffle(x)
    assert sorted(shuffled.view(-1).tolist()) == list(range(8))
    assert not torch.equal(shuffled, x)
    assert torch.equal(batch_unshuffle(shuffled, idx), x)


def test_momentum_encoder_convention():
    online = nn.Linear(2, 2)
    ema = build_momentum_encoder(online, momentum=0.1)
    assert all(not p.requires_grad for p in ema.parameters())
    ema.update_parameters(nn.Sequential(online))  # step 0 copies
    w0 = online.weight.detach().clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    ema.update_parameters(nn.Sequential(online))
    # avg = avg * (1 - m) + online * m
    assert torch.allclose(ema.module[0].weight, w0 * 0.9 + (w0 + 1) * 0.1)
    with pytest.raises(ValueError, match='0.001'):
        build_momentum_encoder(online, momentum=0.999)
