# Copyright (c) mmselfdet contributors. All rights reserved.
"""Semantic tests of the box-level methods: InsLoc (FPN, C4), SoCo (boxes
from the views) and end-to-end SoCo (boxes from its HeatMapProposer).

Every method in ``METHODS`` gets every check:

* every sample counts: with BN in eval mode each image's pixels get a
  gradient, and perturbing image j changes no embedding or per-row loss of
  any other image;
* the loss equals the formula computed here from embeddings the test
  computes itself (one image at a time, mmcv ``roi_align`` at the box);
* box geometry: the RoI features the model pools equal RoIAlign on that
  image's feature map at the box mapped by the view's homography
  (end-to-end: V1 heat-map boxes mapped by ``H_v @ inv(H_v1)``);
* queues (InsLoc): after a step the written rows are the batch's keys.

The batch has three images with different content, boxes and view
homographies (crops, scales, flips), so a batch-index or mapping error
cannot pass. A method added later gets the checks by one entry in
``METHODS`` (a spec with ``build``, ``batch``, ``run`` and the checks).
"""
import copy
from contextlib import ExitStack
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import roi_align

import mmselfdet.models.algorithms.insloc as insloc_module
import mmselfdet.models.algorithms.soco as soco_module
from mmselfdet.registry import MODELS
from .box_checks import (assert_close, assert_only_sample_changes, box_iou, byol_rows,
                         clip_box, crop_matrix, image_index, infonce_rows,
                         map_box, per_image_features, roi_feature, size_level,
                         source_images, view_sample, warp_image, wrapped)
from .test_heatmap_e2e import e2e_cfg
from .test_insloc import tiny_insloc
from .test_soco import tiny_soco

N = 3  # images per batch
SRC = 80  # source image side
TEMPERATURE = 0.2  # tiny_insloc's head
FPN_STRIDES = (4, 8, 16, 32)
ATOL = 1e-4


def build(cfg: dict):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()  # BN on running statistics: samples are independent
    return model


def make_batch(views, sizes, crops, boxes_of=None):
    """Views warped from the source images by crop homographies; per view
    the boxes ``boxes_of(i, view, matrix) -> (boxes, ids)``."""
    data = dict(inputs={v: [] for v in views},
                data_samples={v: [] for v in views})
    for i, src in enumerate(source_images(N, SRC)):
        for v, size, crop in zip(views, sizes, crops[i]):
            mat = crop_matrix(*crop[:3], size, flip=crop[3])
            data['inputs'][v].append(warp_image(src, mat, size))
            boxes, ids = boxes_of(i, v, mat) if boxes_of else (None, None)
            data['data_samples'][v].append(view_sample(size, mat, boxes, ids))
    return data


# ------------------------------------------------------------------ InsLoc
# per image (x0, y0, side, flip) of the query and the key view; one box
INSLOC_CROPS = [((0, 0, 80, False), (8, 4, 64, True)),
                ((10, 6, 64, True), (0, 0, 80, False)),
                ((16, 16, 60, False), (4, 12, 68, False))]
INSLOC_BOXES = [[20, 14, 52, 44], [30, 22, 58, 54], [34, 40, 66, 66]]


class InsLocSpec:
    views = ('query', 'key')
    grad_views = ('query', )  # the key branch is the momentum encoder
    has_queue = True
    queue_len, ptr = 5, 3  # the 3 keys wrap around the end

    def __init__(self, c4: bool):
        self.c4 = c4
        self.strides = (16, ) if c4 else FPN_STRIDES
        self.out_size = 8 if c4 else 7
        self.jitter_levels = () if c4 else (3, )  # as the configs

    def build(self):
        model = build(dict(tiny_insloc(c4=self.c4), queue_len=self.queue_len))
        gen = torch.Generator().manual_seed(1)
        known = torch.randn(model.queue.buffer.shape, generator=gen)
        model.queue.buffer.copy_(F.normalize(known, dim=-1))
        model.queue.ptr.fill_(self.ptr)
        return model

    def batch(self):
        return make_batch(self.views, (64, 64), INSLOC_CROPS,
                          lambda i, v, mat: ([map_box(INSLOC_BOXES[i], mat)],
                                             None))

    def run(self, model, data):
        rec = SimpleNamespace(pooled={}, heads=[], jit=None, unshuffle=None,
                              queue=model.queue.buffer.clone())

        def on_embed(out, embedder, pooled):
            branch = 'query' if embedder is model.box_embedder else 'key'
            rec.pooled[branch] = [p.detach() for p in pooled]

        def on_jitter(out, *args):
            rec.jit = out[0].detach()

        def on_head(out, q, k, negatives, **kwargs):
            rec.heads.append((q.detach(), k.detach(), negatives.detach()))

        def on_shuffle(out, *args):
            rec.unshuffle = out[-1]

        torch.manual_seed(0)
        with ExitStack() as stack:
            stack.enter_context(wrapped(model, '_embed', on_embed))
            stack.enter_context(wrapped(model, '_jitter', on_jitter))
            stack.enter_context(wrapped(model.head, 'loss', on_head))
            stack.enter_context(wrapped(insloc_module, 'batch_shuffle',
                                        on_shuffle))
            rec.losses = model(**data, mode='loss')
        idx = torch.arange(N)
        rec.rows = {}
        for lvl, (q, k, neg) in enumerate(rec.heads):
            rec.rows[f'query{lvl}'] = (q, idx)
            rec.rows[f'key{lvl}'] = (k, idx)
            rec.rows[f'loss{lvl}'] = (infonce_rows(q, k, neg, TEMPERATURE),
                                      idx)
        return rec

    def expected(self, model, data, rec):
        """Pooled features and embeddings, one image at a time, at the
        source box mapped by each view's homography (the jittered box the
        model drew on the jitter levels)."""
        boxes = {v: [map_box(INSLOC_BOXES[i], s.metainfo['homography_matrix'])
                     for i, s in enumerate(data['data_samples'][v])]
                 for v in self.views}
        key_mods = list(model.momentum_encoder.module)

        def online(x):
            out = model.backbone(x)
            return model.neck(out) if model.neck is not None else out

        def key(x):
            out = key_mods[0](x)
            return key_mods[1](out) if len(key_mods) == 3 else out

        exp = SimpleNamespace(boxes=boxes, pooled={}, emb={})
        for v, run in (('query', online), ('key', key)):
            feats = per_image_features(run, data['inputs'][v])
            exp.pooled[v] = [torch.stack([
                roi_feature(feats[i][lvl], rec.jit[i] if v == 'query' and
                            lvl in self.jitter_levels else boxes[v][i],
                            stride, self.out_size) for i in range(N)])
                for lvl, stride in enumerate(self.strides)]
        with torch.no_grad():
            exp.emb['query'] = [model.box_embedder(p)
                                for p in exp.pooled['query']]
            exp.emb['key'] = [F.normalize(key_mods[-1](p), dim=1)
                              for p in exp.pooled['key']]
        return exp

    def check_geometry(self, model, data, rec, exp):
        for lvl in range(len(self.strides)):
            got_q = rec.pooled['query'][lvl]
            got_k = rec.pooled['key'][lvl][rec.unshuffle]  # original order
            for i in range(N):
                assert_close(got_q[i], exp.pooled['query'][lvl][i],
                             f'query L{lvl} image {i}')
                assert_close(got_k[i], exp.pooled['key'][lvl][i],
                             f'key L{lvl} image {i}')
        if self.jitter_levels:
            # each image's jittered box overlaps its own box, not another's
            assert float(rec.losses['jitter_fallback']) == 0
            for i in range(N):
                box, jit = exp.boxes['query'][i], rec.jit[i].tolist()
                assert box_iou(box, jit) > 0.5 and \
                    not np.allclose(box, jit, atol=0.5)
                assert all(box_iou(exp.boxes['query'][j], jit) < 0.5
                           for j in range(N) if j != i)

    def check_loss(self, model, data, rec, exp):
        for lvl in range(len(self.strides)):
            want = infonce_rows(exp.emb['query'][lvl], exp.emb['key'][lvl],
                                rec.queue[lvl], TEMPERATURE).mean()
            got = rec.losses[f'lvl{lvl}_loss_contrast']
            assert torch.allclose(got, want, atol=ATOL), (lvl, got, want)

    def check_queue(self, model, data, rec, exp):
        rows = [(self.ptr + r) % self.queue_len for r in range(N)]
        rest = [r for r in range(self.queue_len) if r not in rows]
        for lvl in range(len(self.strides)):
            buf = model.queue.buffer[lvl]
            assert torch.allclose(buf[rows], exp.emb['key'][lvl], atol=ATOL)
            assert torch.equal(buf[rest], rec.queue[lvl][rest])
        assert model.queue.ptr.tolist() == \
            [(self.ptr + N) % self.queue_len] * len(self.strides)


# -------------------------------------------------------------------- SoCo
SOCO_SIZES = (64, 64, 32)
SOCO_THRESHOLDS = (12, 24, 40)  # tiny_soco's size_thresholds
# per image (x0, y0, side, flip) of V1 (whole image), V2 and V3
SOCO_CROPS = [((0, 0, 80, False), (0, 0, 60, False), (20, 20, 56, False)),
              ((0, 0, 80, True), (10, 10, 70, True), (0, 16, 60, False)),
              ((0, 0, 80, False), (16, 0, 64, False), (8, 24, 56, True))]
# per image, source boxes with ids 0..3 (sizes spread over the levels)
SOCO_BOXES = [[[4, 4, 14, 14], [20, 30, 45, 55], [40, 10, 76, 46],
               [8, 20, 72, 78]],
              [[60, 60, 72, 70], [12, 14, 38, 36], [30, 36, 68, 74],
               [2, 2, 64, 58]],
              [[50, 30, 62, 42], [24, 50, 52, 76], [18, 30, 56, 66],
               [14, 6, 78, 70]]]


def shrink(boxes, *args):
    """Deterministic stand-in for SoCo's V1 box jitter: 0.9x about the
    center (so V1 must use the jittered box and V2 / V3 the mapped one)."""
    ctr = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) * 0.45
    cat = torch.cat if isinstance(boxes, torch.Tensor) else np.concatenate
    return cat([ctr - half, ctr + half], -1)


class SoCoSpec:
    views = ('v1', 'v2', 'v3')
    grad_views = views
    has_queue = False

    def __init__(self, e2e: bool):
        self.e2e = e2e

    def build(self):
        if not self.e2e:
            return build(tiny_soco())
        return build(e2e_cfg(
            jitter=dict(prob=1.0, ratio=0.1),
            extra_crops=dict(num_crops=1, size=32, scale=(1.5, 1.5),
                             flip_prob=1.0)))

    def batch(self):
        def boxes_of(i, v, mat):
            # the view maker's job: keep boxes at least half visible
            kept = [(k, clip_box(map_box(b, mat), SOCO_SIZES[
                self.views.index(v)])) for k, b in enumerate(SOCO_BOXES[i])]
            kept = [(k, c) for k, (c, frac) in kept if frac >= 0.5]
            if v == 'v3':
                kept = kept[::-1]  # other order: matched by id
            return [c for _, c in kept], [k for k, _ in kept]

        return make_batch(self.views, SOCO_SIZES, SOCO_CROPS,
                          None if self.e2e else boxes_of)

    def run(self, model, data):
        rec = SimpleNamespace(calls=[], pooled=[], heads=[], matches=[])

        def on_embed(out, modules, *args):
            rec.calls.append('online' if modules[0] is model.backbone
                             else 'target')

        def on_pool(out, *args):
            rec.pooled.append(out[0].detach())

        def on_head(out, online, target):
            with torch.no_grad():
                pred = model.head.predictor(online)
            rec.heads.append(byol_rows(pred, target))

        def on_propose(out, feat, *args):
            rec.heat, rec.proposals = feat.detach(), out[:2]

        torch.manual_seed(0)
        with ExitStack() as stack:
            stack.enter_context(wrapped(model, '_embed', on_embed))
            stack.enter_context(wrapped(model.roi_pooler, 'forward', on_pool))
            stack.enter_context(wrapped(model.head, 'loss', on_head))
            stack.enter_context(wrapped(
                soco_module, 'match_boxes',
                lambda out, *a: rec.matches.append(out)))
            if self.e2e:
                stack.enter_context(wrapped(model.proposer, 'forward',
                                            on_propose))
                stack.enter_context(mock.patch.object(
                    soco_module, 'relative_jitter', shrink))
            rec.losses = model(**data, mode='loss')
        rec.boxes = self.view_boxes(model, data, rec)
        img = {v: image_index([len(b) for b, _ in rec.boxes[v]])
               for v in self.views}
        online = [k for k, c in enumerate(rec.calls) if c == 'online']
        target = [k for k, c in enumerate(rec.calls) if c == 'target']
        rec.online_pooled = [rec.pooled[k] for k in online]
        rec.target_pooled = [rec.pooled[k] for k in target]
        rec.rows = {}
        for k, v in enumerate(self.views):
            rec.rows[f'online_{v}'] = (rec.online_pooled[k].flatten(1), img[v])
            rec.rows[f'target_{v}'] = (rec.target_pooled[k].flatten(1),
                                       img[v])
        heads = iter(rec.heads)
        for other, (i1, io) in zip(self.views[1:], rec.matches):
            assert torch.equal(img['v1'][i1], img[other][io]), \
                'a V1 box is paired with a box of another image'
            if i1.numel():
                rec.rows[f'loss_v1_{other}'] = (next(heads), img['v1'][i1])
                rec.rows[f'loss_{other}_v1'] = (next(heads), img['v1'][i1])
        for c, rows in enumerate(heads):  # the extra crops of V1's boxes
            rec.rows[f'loss_crop{c}'] = (rows, img['v1'])
        return rec

    def view_boxes(self, model, data, rec):
        """view -> per image ``(boxes (n, 4) in view pixels, ids)``: the
        boxes the model must pool, computed here from the homographies."""
        mats = {v: [s.metainfo['homography_matrix'].astype(np.float64)
                    for s in data['data_samples'][v]] for v in self.views}
        out = {v: [] for v in self.views}
        for i in range(N):
            if not self.e2e:
                for v, size in zip(self.views, SOCO_SIZES):
                    ids = data['data_samples'][v][i].gt_instances.\
                        instances_ids.tolist()
                    boxes = [clip_box(map_box(SOCO_BOXES[i][k], mats[v][i]),
                                      size)[0] for k in ids]
                    out[v].append((np.array(boxes).reshape(-1, 4), ids))
                continue
            boxes, valid = rec.proposals
            slots = valid[i].nonzero()[:, 0].tolist()
            props = [boxes[i, k].double().numpy() for k in slots]
            out['v1'].append((np.array([shrink(b) for b in props]).reshape(
                -1, 4), slots))
            for v, size in zip(self.views[1:], SOCO_SIZES[1:]):
                rel = mats[v][i] @ np.linalg.inv(mats['v1'][i])
                kept = [(k, clip_box(map_box(b, rel), size))
                        for k, b in zip(slots, props)]
                kept = [(k, c) for k, (c, frac) in kept
                        if frac >= model.min_visible]
                out[v].append((np.array([c for _, c in kept]).reshape(-1, 4),
                               [k for k, _ in kept]))
        return out

    def expected(self, model, data, rec):
        tm = list(model.target_net.module)
        branches = dict(
            online=(lambda x: model.neck(model.backbone(x)),
                    lambda p: model.projector(model.box_embedder(p))),
            target=(lambda x: tm[1](tm[0](x)), lambda p: tm[3](tm[2](p))))
        exp = SimpleNamespace(pooled={}, proj={})
        for name, (feat_fn, embed_fn) in branches.items():
            for v in self.views:
                feats = per_image_features(feat_fn, data['inputs'][v])
                pooled = []
                for i, (boxes, _) in enumerate(rec.boxes[v]):
                    for box in boxes:
                        lvl = size_level(box, SOCO_THRESHOLDS)
                        pooled.append(roi_feature(
                            feats[i][lvl], box, FPN_STRIDES[lvl], 7))
                exp.pooled[name, v] = torch.stack(pooled)
                with torch.no_grad():
                    exp.proj[name, v] = embed_fn(exp.pooled[name, v])
        if self.e2e:  # the heat map is the target C3 of each image's V1
            c3 = per_image_features(tm[0], data['inputs']['v1'])
            exp.heat = torch.cat([f[model.heat_stage] for f in c3])
        return exp

    def check_geometry(self, model, data, rec, exp):
        for i in range(N):  # every image has pairs in both V2 and V3
            assert all(len(rec.boxes[v][i][1]) for v in self.views), i
        first = [rec.boxes['v1'][i][0][0] for i in range(N)]
        assert all(box_iou(first[0], b) < 0.9 for b in first[1:])
        if self.e2e:
            assert_close(rec.heat, exp.heat, 'heat map input')
        else:
            levels = {size_level(b, SOCO_THRESHOLDS) for v in self.views
                      for boxes, _ in rec.boxes[v] for b in boxes}
            assert len(levels) >= 3, levels
        for k, v in enumerate(self.views):
            for name, got in (('online', rec.online_pooled[k]),
                              ('target', rec.target_pooled[k])):
                assert_close(got, exp.pooled[name, v], (name, v))

    def check_loss(self, model, data, rec, exp):
        pred = model.head.predictor
        img = {v: image_index([len(b) for b, _ in rec.boxes[v]])
               for v in self.views}
        flat_ids = {v: sum((ids for _, ids in rec.boxes[v]), [])
                    for v in self.views}
        total, pairs = 0.0, 0
        with torch.no_grad():
            for other in self.views[1:]:
                p1, po = [], []
                for r1, (i1, id1) in enumerate(zip(img['v1'], flat_ids['v1'])):
                    for ro, (io, ido) in enumerate(zip(img[other],
                                                       flat_ids[other])):
                        if i1 == io and id1 == ido:
                            p1.append(r1)
                            po.append(ro)
                if not p1:
                    continue
                total = total + byol_rows(
                    pred(exp.proj['online', 'v1'][p1]),
                    exp.proj['target', other][po]).mean() + byol_rows(
                        pred(exp.proj['online', other][po]),
                        exp.proj['target', 'v1'][p1]).mean()
                pairs += 1
            assert torch.allclose(rec.losses['loss_soco'], total / pairs,
                                  atol=ATOL)
            if self.e2e:
                want = byol_rows(pred(self._crop_proj(model, data, rec)),
                                 exp.proj['target', 'v1']).mean()
                assert torch.allclose(rec.losses['loss_soco_crops'], want,
                                      atol=ATOL)

    @staticmethod
    def _crop_proj(model, data, rec, size=32, scale=1.5):
        """Online projections of the flipped 1.5x crop around each V1 box."""
        projs = []
        for i, (boxes, _) in enumerate(rec.boxes['v1']):
            for box in boxes:
                ctr, wh = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * scale
                region = np.clip(np.concatenate([ctr - wh / 2, ctr + wh / 2]),
                                 0, 64)
                roi = torch.tensor([[0.0, *region]], dtype=torch.float32)
                patch = roi_align(data['inputs']['v1'][i:i + 1], roi,
                                  (size, size), 1.0, 2, 'avg', True).flip(-1)
                rw, rh = region[2:] - region[:2]
                inner = np.clip((box - np.tile(region[:2], 2)) *
                                np.array([size / rw, size / rh] * 2), 0, size)
                inner = [size - inner[2], inner[1], size - inner[0], inner[3]]
                feats = model.neck(model.backbone(patch))
                lvl = size_level(inner, SOCO_THRESHOLDS)
                pooled = roi_feature(feats[lvl], inner, FPN_STRIDES[lvl], 7)
                projs.append(model.projector(model.box_embedder(pooled[None])))
        return torch.cat(projs)


METHODS = {
    'insloc_fpn': InsLocSpec(c4=False),
    'insloc_c4': InsLocSpec(c4=True),
    'soco': SoCoSpec(e2e=False),
    'soco_e2e': SoCoSpec(e2e=True),
}
_SETUPS = {}


def setup(name):
    """(spec, fresh copy of the model, preprocessed batch)."""
    spec = METHODS[name]
    if name not in _SETUPS:
        model = spec.build()
        _SETUPS[name] = (model, model.data_preprocessor(spec.batch(), True))
    model, data = _SETUPS[name]
    return spec, copy.deepcopy(model), data


def with_inputs(data, inputs):
    return dict(inputs=inputs, data_samples=data['data_samples'])


@pytest.mark.parametrize('name', METHODS)
def test_every_sample_gets_a_gradient(name):
    spec, model, data = setup(name)
    inputs = {v: x.clone().requires_grad_(True)
              for v, x in data['inputs'].items()}
    losses = spec.run(model, with_inputs(data, inputs)).losses
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for v in spec.grad_views:
        per_image = inputs[v].grad.abs().flatten(1).sum(1)  # (N,)
        assert (per_image > 0).all(), \
            f'{name}: view {v}, gradient per image {per_image.tolist()}'


@pytest.mark.parametrize('name', METHODS)
def test_perturbing_one_sample_changes_only_its_rows(name):
    spec, model, data = setup(name)
    base = spec.run(copy.deepcopy(model), data).rows
    for j in range(N):
        gen = torch.Generator().manual_seed(j)
        inputs = {v: x.clone() for v, x in data['inputs'].items()}
        for x in inputs.values():
            x[j] += 40 * torch.randn(x[j].shape, generator=gen)
        pert = spec.run(copy.deepcopy(model), with_inputs(data, inputs)).rows
        assert_only_sample_changes(base, pert, j, N)


@pytest.mark.parametrize('name', METHODS)
def test_roi_features_follow_each_views_homography(name):
    spec, model, data = setup(name)
    rec = spec.run(model, data)
    spec.check_geometry(model, data, rec, spec.expected(model, data, rec))


@pytest.mark.parametrize('name', METHODS)
def test_loss_equals_the_formula(name):
    spec, model, data = setup(name)
    rec = spec.run(model, data)
    spec.check_loss(model, data, rec, spec.expected(model, data, rec))


@pytest.mark.parametrize('name', [n for n in METHODS
                                  if METHODS[n].has_queue])
def test_queue_holds_the_batch_keys_at_the_pointer(name):
    spec, model, data = setup(name)
    rec = spec.run(model, data)
    spec.check_queue(model, data, rec, spec.expected(model, data, rec))
