# Copyright (c) mmselfdet contributors. All rights reserved.
"""Semantic tests of the global-view methods (issue 15): MoCo v2, BYOL,
DetCo and object-aware crops over MoCo v2 and BYOL.

Each method is one :class:`Method` row of ``METHODS``; every test runs over
all rows:

* every sample counts, and only through its own pixels (BN in eval mode):
  each sample's online pixels get a gradient (DetCo: each of its 9 jigsaw
  patches too), each sample's loss terms have gradient on its own pixels
  only, and perturbing sample j changes no embedding or loss term of i != j;
* the loss equals the method's formula recomputed here from the model's
  parts, with a known queue, temperature, stage weights and an EMA step
  done by the test (``reference``);
* after a step every queue holds that batch's normalised keys, in order, at
  its pointer (wrapping), and nothing else changed.

The models are the shipped toy configs (ResNet-18) on 32 px views; the
object-aware rows get their views from the config's own
``ObjectAwareCrops`` pipeline.
"""
import copy
import functools
import math
import os.path as osp
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseAveragedModel

from mmselfdet.models.utils import FeatureQueue
from mmselfdet.models.utils.momentum import CosineMomentumEMA
from mmselfdet.registry import MODELS
from .semantic_checks import (bn_eval, byol_rows, changed_rows, ema_copy,
                              grid_cells, head_terms, infonce_rows,
                              input_grads, perturb_sample, record_calls,
                              sample_grad)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
N = 3  # batch size of every check
TEMPERATURE = 0.2  # docs/methods.md §0 (MoCo v2, DetCo)
STAGE_WEIGHTS = (0.1, 0.4, 0.7, 1.0)  # docs/methods.md §3, res2..res5
# (losses, enqueued keys {(queue attr, index): (N, D)}, momentum encoders
# after the step {attr: module})
Expected = Tuple[Dict[str, torch.Tensor], Dict[Tuple[str, int], torch.Tensor],
                 Dict[str, nn.Module]]


@functools.lru_cache(maxsize=None)
def load_cfg(path: str) -> Config:
    return Config.fromfile(f'{REPO}/configs/{path}')


def random_batch(sizes: Dict[str, int], n: int = N, seed: int = 0) -> dict:
    """A collated raw batch: ``n`` uint8 images per view of the given side."""
    g = torch.Generator().manual_seed(seed)
    return {'inputs': {v: [torch.randint(0, 256, (3, s, s), generator=g,
                                         dtype=torch.uint8)
                           for _ in range(n)] for v, s in sizes.items()},
            'data_samples': None}


def object_crop_batch(path: str, n: int = N, seed: int = 0) -> dict:
    """A collated batch made by the config's own pipeline (ObjectAwareCrops
    + PackViews) from synthetic 96 px scenes with two boxes each."""
    steps = [t for t in load_cfg(path).train_dataloader.dataset.pipeline
             if not t['type'].startswith('Load')]
    assert steps[0]['type'] == 'ObjectAwareCrops', steps[0]
    pipe = Compose(copy.deepcopy(steps))
    rng = np.random.RandomState(seed)
    np.random.seed(seed)
    random.seed(seed)
    samples = []
    for i in range(n):
        img = rng.randint(0, 256, (96, 96, 3)).astype(np.uint8)
        boxes = np.array([[8, 10, 50, 60], [40, 30, 90, 88]], np.float32)
        samples.append(pipe(dict(
            img=img, img_shape=(96, 96), ori_shape=(96, 96), img_id=i,
            img_path=f'{i}.jpg', gt_bboxes=boxes,
            gt_bboxes_labels=np.zeros(2, np.int64),
            gt_ignore_flags=np.zeros(2, bool))))
    return pseudo_collate(samples)


# ---------------------------------------------------------------- references
def moco_reference(model: nn.Module, inputs: dict, cfg: dict) -> Expected:
    """InfoNCE(q, k; queue, T) with k from the key encoder after its EMA
    step; the key is enqueued."""
    img_q, img_k = (inputs[v] for v in cfg.get('views', ('view1', 'view2')))
    online = nn.Sequential(model.backbone, model.neck)
    key_enc = ema_copy(model.momentum_encoder, online, cfg['momentum'])
    query = model.neck(model.backbone(img_q))  # (N, D)
    key = F.normalize(key_enc(img_k), dim=1)  # (N, D)
    loss = infonce_rows(query, key, model.queue.buffer[0], TEMPERATURE)
    return ({'loss_contrast': loss.mean()}, {('queue', 0): key},
            {'momentum_encoder': key_enc})


def byol_reference(model: nn.Module, inputs: dict, cfg: dict) -> Expected:
    """mean(2 - 2cos(p(z1), t2)) + mean(2 - 2cos(p(z2), t1)), the target
    after its EMA step with the cosine-scheduled momentum."""
    img1, img2 = (inputs[v] for v in cfg.get('views', ('view1', 'view2')))
    ema = model.target_net
    base, end = cfg['momentum'], cfg['end_momentum']
    t = min(int(ema.steps) / ema.max_steps, 1.0)
    momentum = end + (base - end) * (1 + math.cos(math.pi * t)) / 2
    online = nn.Sequential(model.backbone, model.neck)
    target = ema_copy(ema, online, momentum)
    z1, z2 = online(img1), online(img2)  # (N, D) each
    p1, p2 = model.head.predictor(z1), model.head.predictor(z2)
    loss = byol_rows(p1, target(img2)).mean() + \
        byol_rows(p2, target(img1)).mean()
    return {'loss_byol': loss}, {}, {'target_net': target}


def detco_reference(model: nn.Module, inputs: dict, cfg: dict) -> Expected:
    """Per stage s: w_s * (gg + ll + lg) with separate global / local queues
    (docs/methods.md §3); local embeddings from the 9 patches cut here."""
    g_q, g_k, l_q, l_k = (inputs[v] for v in cfg['views'])
    grid = cfg['neck']['grid']
    online = nn.Sequential(model.backbone, model.neck)
    key_enc = ema_copy(model.momentum_encoder, online, cfg['momentum'])
    key_backbone, key_neck = key_enc

    def global_emb(backbone, neck, img):
        return [mlp(f) for mlp, f in zip(neck.global_mlps, backbone(img))]

    def local_emb(backbone, neck, tiles):
        p = tiles.size(-1) // grid
        patches = torch.stack([
            tile[:, r * p:(r + 1) * p, c * p:(c + 1) * p] for tile in tiles
            for r in range(grid) for c in range(grid)])  # (N * g * g, 3, p, p)
        out = []
        for mlp, f in zip(neck.local_mlps, backbone(patches)):
            pooled = f.mean(dim=(2, 3))  # (N * g * g, C)
            per_image = torch.stack([
                torch.cat([pooled[i * grid * grid + k]
                           for k in range(grid * grid)])
                for i in range(tiles.size(0))])  # (N, g * g * C)
            out.append(mlp(per_image))  # (N, D)
        return out

    q_g = global_emb(model.backbone, model.neck, g_q)
    q_l = local_emb(model.backbone, model.neck, l_q)
    k_g = [F.normalize(k, dim=1)
           for k in global_emb(key_backbone, key_neck, g_k)]
    k_l = [F.normalize(k, dim=1)
           for k in local_emb(key_backbone, key_neck, l_k)]
    losses, keys = {}, {}
    for s, w in enumerate(STAGE_WEIGHTS):
        gq, lq = model.global_queue.buffer[s], model.local_queue.buffer[s]
        name = f'res{s + 2}_'
        for term, q, k, queue in (('gg', q_g, k_g, gq), ('ll', q_l, k_l, lq),
                                  ('lg', q_l, k_g, gq)):
            rows = infonce_rows(q[s], k[s], queue, TEMPERATURE)
            losses[f'{name}{term}_loss_contrast'] = w * rows.mean()
        keys[('global_queue', s)] = k_g[s]
        keys[('local_queue', s)] = k_l[s]
    return losses, keys, {'momentum_encoder': key_enc}


@dataclass(frozen=True)
class Method:
    """One row of the method table.

    Attributes:
        name: Test id.
        config: Toy config under ``configs/`` whose ``model`` is tested.
        batch: ``() -> collated raw batch`` of ``N`` samples.
        grad_views: Views through the online network (they get gradients;
            the others are key / target views without gradient).
        reference: ``(model copy, preprocessed inputs, model cfg) ->
            Expected`` (losses, enqueued keys, momentum encoders after the
            step), computed before the step.
        grids: Views that are jigsaw tiles, with their grid side.
        queued: Whether the method keeps :class:`FeatureQueue` s.
    """
    name: str
    config: str
    batch: Callable[[], dict]
    grad_views: Tuple[str, ...]
    reference: Callable[[nn.Module, dict, dict], Expected]
    grids: Dict[str, int] = field(default_factory=dict)
    queued: bool = True


TWO_VIEWS = functools.partial(random_batch, {'view1': 32, 'view2': 32})
OBJ_MOCO = 'objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py'
OBJ_BYOL = 'objcrop/byol-objcrop_r18_1xb32-110it_toy.py'
METHODS = [
    Method('mocov2', 'mocov2/mocov2_r18_1xb32-180it_toy.py', TWO_VIEWS,
           ('view1', ), moco_reference),
    Method('byol', 'byol/byol_r18_1xb32-110it_toy.py', TWO_VIEWS,
           ('view1', 'view2'), byol_reference, queued=False),
    Method('detco', 'detco/detco_r18_1xb32-60it_toy.py',
           functools.partial(random_batch, {'view1': 32, 'view2': 32,
                                            'local1': 48, 'local2': 48}),
           ('view1', 'local1'), detco_reference,
           grids={'local1': 3, 'local2': 3}),
    Method('objcrop-mocov2', OBJ_MOCO,
           functools.partial(object_crop_batch, OBJ_MOCO), ('view1', ),
           moco_reference),
    Method('objcrop-byol', OBJ_BYOL,
           functools.partial(object_crop_batch, OBJ_BYOL),
           ('view1', 'view2'), byol_reference, queued=False),
]
QUEUED = [m for m in METHODS if m.queued]
ids = [m.name for m in METHODS]


@functools.lru_cache(maxsize=None)
def prepared(name: str) -> Tuple[nn.Module, dict, dict]:
    """Model (BN in eval mode, non-trivial BN statistics, key encoder apart
    from the online net after 3 EMA steps, known queues with the pointer
    2 rows before the end), preprocessed inputs, model cfg. Tests must
    deepcopy the model."""
    method = next(m for m in METHODS if m.name == name)
    cfg = load_cfg(method.config).model.to_dict()
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    model.train()
    assert bn_eval(model) > 0
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
            if isinstance(m, BaseAveragedModel):
                for p in m.module.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * 0.02)
                m.steps.fill_(3)
                if isinstance(m, CosineMomentumEMA):
                    m.max_steps = 10
            if isinstance(m, FeatureQueue):
                m.buffer.copy_(F.normalize(
                    torch.randn(m.buffer.shape, generator=g), dim=-1))
                m.ptr.fill_(m.length - 2)
    data = model.data_preprocessor(method.batch(), True)
    return model, data['inputs'], cfg


def run_step(model: nn.Module, inputs: dict, seed: int = 0):
    """One loss step; returns (losses, per-sample rows of the head)."""
    torch.manual_seed(seed)  # shuffle-BN draws its permutation here
    with record_calls(model.head, 'loss') as calls:
        losses = model(inputs, None, mode='loss')
    return losses, head_terms(model.head, calls)


@pytest.mark.parametrize('method', METHODS, ids=ids)
def test_every_sample_counts_through_its_own_pixels(method):
    base, inputs, _ = prepared(method.name)
    model = copy.deepcopy(base)
    x = input_grads(inputs, inputs)  # every view, to see which get none
    losses, rows = run_step(model, x)
    grad_views = [x[v] for v in method.grad_views]
    loss_rows = [r for k, r in rows.items() if k.endswith('loss')]
    # sample i's loss terms reach sample i's pixels and no other sample's
    for i in range(N):
        own = sum(r[i] for r in loss_rows)
        grads = torch.autograd.grad(own, grad_views, retain_graph=True)
        for v, grad in zip(method.grad_views, grads):
            per_sample = sample_grad(grad)
            assert per_sample[i] > 0, (v, i)
            others = [j for j in range(N) if j != i]
            assert torch.all(per_sample[others] == 0), (v, i, per_sample)
    # the optimised loss gives every sample's online pixels a gradient
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for v in x:
        if v in method.grad_views:
            assert torch.all(sample_grad(x[v].grad) > 0), v
            if v in method.grids:  # each of a sample's own jigsaw patches
                cells = grid_cells(x[v].grad, method.grids[v])
                assert torch.all(cells > 0), (v, cells)
        else:  # key / target views are stop-gradient
            assert x[v].grad is None or not x[v].grad.any(), v


@pytest.mark.parametrize('method', METHODS, ids=ids)
def test_perturbing_one_sample_changes_only_its_rows(method):
    base, inputs, _ = prepared(method.name)
    _, ref = run_step(copy.deepcopy(base), inputs, seed=0)
    j = 1
    for view in inputs:
        # another shuffle-BN permutation: rows must not depend on it
        _, rows = run_step(copy.deepcopy(base),
                           perturb_sample(inputs, view, j), seed=1)
        assert rows.keys() == ref.keys()
        changed = {k: changed_rows(rows[k], ref[k]) for k in ref}
        leaks = {k: c for k, c in changed.items() if set(c) - {j}}
        assert not leaks, f'perturbing sample {j} of {view} changed {leaks}'
        touched = [k for k, c in changed.items() if c == [j]]
        assert touched, f'sample {j} of {view} reaches no embedding or loss'
        if view in method.grad_views:
            assert any(k.endswith('loss') for k in touched), (view, touched)


@pytest.mark.parametrize('method', METHODS, ids=ids)
def test_loss_equals_the_formula(method):
    base, inputs, cfg = prepared(method.name)
    model = copy.deepcopy(base)
    with torch.no_grad():
        expected, _, emas = method.reference(copy.deepcopy(base), inputs, cfg)
        losses = model(inputs, None, mode='loss')
    assert {k for k in losses if 'loss' in k} == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(losses[k].double(), v, rtol=1e-5,
                                   atol=1e-6, msg=k)
    # one EMA step per loss step, with the momentum the formula used
    for attr, enc in emas.items():
        ema = getattr(model, attr)
        assert int(ema.steps) == int(getattr(base, attr).steps) + 1
        state = ema.module.state_dict()
        for k, v in enc.state_dict().items():
            torch.testing.assert_close(state[k], v, msg=f'{attr}.{k}')


@pytest.mark.parametrize('method', QUEUED, ids=[m.name for m in QUEUED])
def test_queue_holds_the_batch_keys_at_the_pointer(method):
    base, inputs, cfg = prepared(method.name)
    model = copy.deepcopy(base)
    with torch.no_grad():
        _, keys, _ = method.reference(copy.deepcopy(base), inputs, cfg)
        queues = {name: m for name, m in model.named_modules()
                  if isinstance(m, FeatureQueue)}
        assert {(a, i) for a, q in queues.items()
                for i in range(q.num_queues)} == set(keys)
        before = {a: (q.buffer.clone(), q.ptr.clone())
                  for a, q in queues.items()}
        model(inputs, None, mode='loss')
    for (attr, index), key in keys.items():
        queue = queues[attr]
        buf, ptr = before[attr]
        pos = (int(ptr[index]) + torch.arange(N)) % queue.length
        assert pos.tolist() == [queue.length - 2, queue.length - 1, 0]
        torch.testing.assert_close(queue.buffer[index, pos], key, rtol=1e-5,
                                   atol=1e-6, msg=f'{attr}[{index}]')
        rest = torch.ones(queue.length, dtype=torch.bool)
        rest[pos] = False
        assert torch.equal(queue.buffer[index, rest], buf[index, rest])
        assert int(queue.ptr[index]) == 1


def test_infonce_by_hand():
    """Two samples, D=2, a queue of two keys, T=0.5, weight 0.4."""
    head = MODELS.build(dict(type='QueueContrastiveHead', temperature=0.5))
    query = torch.tensor([[2., 0.], [0., 3.]])  # normalised: e1, e2
    key = torch.tensor([[0.6, 0.8], [1., 0.]])
    queue = torch.tensor([[0., 1.], [-1., 0.]])
    # logits/T: sample 0 [0.6, 0, -1] / 0.5; sample 1 [0, 1, 0] / 0.5
    row0 = math.log(math.exp(1.2) + math.exp(0) + math.exp(-2)) - 1.2
    row1 = math.log(math.exp(0) + math.exp(2) + math.exp(0)) - 0
    out = head.loss(query, key, queue, weight=0.4, prefix='res3_gg_')
    assert float(out['res3_gg_loss_contrast']) == pytest.approx(
        0.4 * (row0 + row1) / 2, rel=1e-6)
    assert float(out['res3_gg_contrast_acc']) == 50.0  # sample 1 is wrong
    assert float(out['res3_gg_contrast_chance']) == pytest.approx(
        0.4 * math.log(3), rel=1e-6)
    rows = infonce_rows(query, key, queue, 0.5)
    assert rows.tolist() == pytest.approx([row0, row1], rel=1e-6)


def test_byol_by_hand():
    """Identity predictor: rows 2 - 2cos are 2 (orthogonal), 0 (parallel)
    and 2 - 2 * 0.8 (cos of (0, 5) and (3, 4)); the loss is their mean."""
    head = MODELS.build(dict(type='BYOLHead', predictor=dict(
        type='MLPProjector', in_channels=2, hid_channels=2, out_channels=2,
        num_layers=1, with_avg_pool=False)))
    nn.init.eye_(head.predictor.mlp[0].weight)
    nn.init.zeros_(head.predictor.mlp[0].bias)
    online = torch.tensor([[1., 0.], [2., 2.], [0., 5.]])
    target = torch.tensor([[0., 3.], [1., 1.], [3., 4.]])
    out = {k: float(v.detach()) for k, v in head.loss(online, target).items()}
    assert out['loss_byol'] == pytest.approx((2 + 0 + 0.4) / 3, abs=1e-6)
    assert out['byol_cos'] == pytest.approx((0 + 1 + 0.8) / 3, abs=1e-6)
    assert byol_rows(online, target).tolist() == pytest.approx(
        [2, 0, 0.4], abs=1e-12)
