# Copyright (c) mmselfdet contributors. All rights reserved.
"""Semantic tests of the box-level methods (issue 15): InsLoc (FPN, C4),
SoCo (boxes from the views), end-to-end SoCo (boxes from HeatMapProposer).

Each method in ``METHODS`` gets every check, with BN in eval mode: each
image's pixels get a gradient and perturbing image j changes no RoI
feature, embedding or per-row loss of another image; the loss equals the
formula on embeddings the test computes itself (one image at a time, mmcv
``roi_align``, an independent EMA step); the pooled RoI features equal
RoIAlign on that image's map at the box mapped by the view's homography
(e2e: V1 heat-map boxes through ``H_v @ inv(H_v1)``; InsLoc: the jittered
P5 box too); InsLoc's level queues get the batch's keys at the pointer.
Three images with different content, boxes and homographies (crops,
scales, flips), so a batch-index or mapping error cannot pass. A method
added later gets the checks by one spec entry in ``METHODS``.
"""
import copy
from contextlib import ExitStack
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmselfdet.models.algorithms.soco as soco_module
import mmselfdet.models.algorithms.soco_boxes as soco_boxes_module
import mmselfdet.models.utils.momentum as momentum_module
from mmselfdet.models.utils import BoxEncoder
from mmselfdet.registry import MODELS
from .box_checks import (assert_close, assert_loss,
                         assert_only_sample_changes, box_iou, ema_off_online,
                         flipped_crop, image_index, map_box,
                         per_image_features, pool_boxes, roi_feature, shrink,
                         size_level, visible_boxes, warped_batch, wrapped)
from .semantic_checks import (byol_rows, ema_copy, head_terms, infonce_rows,
                              input_grads, record_calls, sample_grad)
from .test_heatmap_e2e import e2e_cfg
from .test_insloc import tiny_insloc
from .test_soco import tiny_soco

N = 3  # images per batch
SRC = 80  # source image side
TEMPERATURE = 0.2  # tiny_insloc's head
MOMENTUM = 0.01  # tiny_insloc's and tiny_soco's EMA weight of the online net
FPN_STRIDES = (4, 8, 16, 32)


def build(cfg: dict, ema_attr: str):
    """The model in eval mode (BN on running statistics: samples are
    independent), its EMA moved off the online net (``ema_off_online``)."""
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    ema_off_online(getattr(model, ema_attr))
    return model


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
        self.strides = (16, ) if c4 else FPN_STRIDES
        self.out_size = 8 if c4 else 7
        self.jitter_levels = (0, ) if c4 else (3, )  # as the configs
        self.cfg = dict(tiny_insloc(c4=c4), queue_len=self.queue_len,
                        jitter_levels=self.jitter_levels)

    def build(self):
        model = build(self.cfg, 'momentum_encoder')
        gen = torch.Generator().manual_seed(1)  # a known queue per level
        known = torch.randn(model.queue.buffer.shape, generator=gen)
        model.queue.buffer.copy_(F.normalize(known, dim=-1))
        model.queue.ptr.fill_(self.ptr)
        return model

    def batch(self):
        return warped_batch(N, SRC, self.views, (64, 64), INSLOC_CROPS,
                            lambda i, v, mat: (
                                [map_box(INSLOC_BOXES[i], mat)], None))

    def run(self, model, data):
        rec = SimpleNamespace(pooled={}, queue=model.queue.buffer.clone())

        def on_embed(out, encoder, pooled):
            branch = 'query' if encoder.box_embedder is model.box_embedder \
                else 'key'
            rec.pooled[branch] = [p.detach() for p in pooled]

        torch.manual_seed(0)
        with ExitStack() as stack:
            enter = stack.enter_context
            enter(wrapped(BoxEncoder, 'embed_pooled', on_embed))
            enter(wrapped(model, '_jitter',
                          lambda out, *a: setattr(rec, 'jit', out[0])))
            enter(wrapped(momentum_module, 'batch_shuffle',
                          lambda out, *a: setattr(rec, 'unshuffle', out[-1])))
            calls = enter(record_calls(model.head))
            rec.losses = model(**data, mode='loss')
        rows = head_terms(model.head, calls)  # lvl<l>_q, _k, _loss
        rec.rows = {k: (v, torch.arange(N)) for k, v in rows.items()}
        for branch, pooled in rec.pooled.items():
            for lvl, p in enumerate(pooled):
                if branch == 'key':
                    p = p[rec.unshuffle]  # the original order
                rec.rows[f'{branch}_pooled{lvl}'] = (p, torch.arange(N))
        return rec

    def expected(self, before, data, rec):
        """Pooled features and embeddings, one image at a time, at the
        source box mapped by each view's homography (the jittered box the
        model drew on the jitter levels)."""
        online = before.online_encoder
        key_enc = ema_copy(before.momentum_encoder, online, MOMENTUM)
        boxes = {v: [[map_box(INSLOC_BOXES[i],
                              s.metainfo['homography_matrix'])]
                     for i, s in enumerate(data['data_samples'][v])]
                 for v in self.views}
        exp = SimpleNamespace(boxes=boxes, pooled={}, emb={})
        for v, mods in (('query', online), ('key', key_enc)):
            feats = per_image_features(lambda x: mods.features(x).pyramid,
                                       data['inputs'][v])
            exp.pooled[v] = [pool_boxes(
                feats, [[rec.jit[i]] for i in range(N)]
                if v == 'query' and lvl in self.jitter_levels else boxes[v],
                self.strides, self.out_size, lambda box, lvl=lvl: lvl)
                for lvl in range(len(self.strides))]
        with torch.no_grad():
            exp.emb['query'] = [online.box_embedder(p)
                                for p in exp.pooled['query']]
            exp.emb['key'] = [F.normalize(key_enc.box_embedder(p), dim=1)
                              for p in exp.pooled['key']]
        return exp

    def check_geometry(self, model, data, rec, exp):
        for lvl in range(len(self.strides)):
            for v in self.views:
                assert_close(rec.rows[f'{v}_pooled{lvl}'][0],
                             exp.pooled[v][lvl], f'{v} level {lvl}')
        if self.jitter_levels:
            # each image's jittered box overlaps its own box, not another's
            assert float(rec.losses['jitter_fallback']) == 0
            for i in range(N):
                box, jit = exp.boxes['query'][i][0], rec.jit[i].tolist()
                assert box_iou(box, jit) > 0.5
                assert not np.allclose(box, jit, atol=0.5)

    def check_loss(self, model, data, rec, exp):
        for lvl in range(len(self.strides)):
            want = infonce_rows(exp.emb['query'][lvl], exp.emb['key'][lvl],
                                rec.queue[lvl], TEMPERATURE).mean()
            assert_loss(rec.losses[f'lvl{lvl}_loss_contrast'], want, lvl)

    def check_queue(self, model, data, rec, exp):
        rows = [(self.ptr + r) % self.queue_len for r in range(N)]
        rest = [r for r in range(self.queue_len) if r not in rows]
        for lvl in range(len(self.strides)):
            buf = model.queue.buffer[lvl]
            assert_close(buf[rows], exp.emb['key'][lvl], f'queue {lvl}')
            assert torch.equal(buf[rest], rec.queue[lvl][rest])
        assert model.queue.ptr.tolist() == \
            [(self.ptr + N) % self.queue_len] * len(self.strides)


# -------------------------------------------------------------------- SoCo
SOCO_SIZES = (64, 64, 32)
SOCO_THRESHOLDS = (12, 24, 40)  # tiny_soco's size_thresholds
# per image (x0, y0, side, flip) of V1 (whole image), V2 and V3
SOCO_CROPS = [((0, 0, 80, False), (0, 0, 60, False), (24, 24, 40, False)),
              ((0, 0, 80, True), (10, 10, 70, True), (0, 16, 60, False)),
              ((0, 0, 80, False), (16, 0, 64, False), (8, 24, 56, True))]
# per image, source boxes with ids 0..3 (sizes spread over the levels)
SOCO_BOXES = [[[4, 4, 14, 14], [20, 30, 45, 55], [40, 10, 76, 46],
               [8, 20, 72, 78]],
              [[60, 60, 72, 70], [12, 14, 38, 36], [30, 36, 68, 74],
               [2, 2, 64, 58]],
              [[50, 30, 62, 42], [24, 50, 52, 76], [18, 30, 56, 66],
               [14, 6, 78, 70]]]
CROP_SIZE, CROP_SCALE = 32, 1.5  # the e2e extra crops, fixed, always flipped


def level(box):
    return size_level(box, SOCO_THRESHOLDS)


class SoCoSpec:
    views = ('v1', 'v2', 'v3')
    grad_views = views
    has_queue = False

    def __init__(self, e2e: bool):
        self.e2e = e2e
        self.cfg = tiny_soco() if not e2e else e2e_cfg(
            jitter=dict(prob=1.0, ratio=0.1),
            extra_crops=dict(num_crops=1, size=CROP_SIZE, source='v1',
                             scale=(CROP_SCALE, CROP_SCALE), flip_prob=1.0))

    def build(self):
        return build(self.cfg, 'target_net')

    def batch(self):
        def boxes_of(i, v, mat):
            # the view maker's job: boxes at least half visible, matched by
            # id (V3 lists them in another order)
            boxes, ids = visible_boxes(SOCO_BOXES[i], range(4), mat,
                                       SOCO_SIZES[self.views.index(v)], 0.5)
            return (boxes[::-1], ids[::-1]) if v == 'v3' else (boxes, ids)

        return warped_batch(N, SRC, self.views, SOCO_SIZES, SOCO_CROPS,
                            None if self.e2e else boxes_of)

    def run(self, model, data):
        rec = SimpleNamespace(calls=[], pooled=[], matches=[])

        def on_embed(out, encoder, *args):
            rec.calls.append('online' if encoder.backbone is model.backbone
                             else 'target')

        def on_propose(out, feat, *args):
            rec.heat, rec.proposals = feat.detach(), out[:2]

        torch.manual_seed(0)
        with ExitStack() as stack:
            enter = stack.enter_context
            enter(wrapped(BoxEncoder, 'embed', on_embed))
            # the online pooler and the target's copy of it
            enter(wrapped(type(model.roi_pooler), 'forward',
                          lambda out, *a: rec.pooled.append(out[0].detach())))
            enter(wrapped(soco_module, 'match_boxes',
                          lambda out, *a: rec.matches.append(out)))
            if self.e2e:
                enter(wrapped(model.box_source.proposer, 'forward',
                              on_propose))
                enter(mock.patch.object(soco_boxes_module, 'relative_jitter',
                                        shrink))
            calls = enter(record_calls(model.head))
            rec.losses = model(**data, mode='loss')
        rec.boxes = self.view_boxes(model, data, rec)
        img = {v: image_index([len(ids) for _, ids in rec.boxes[v]])
               for v in self.views}
        # embed order: online V1, V2, V3, target V1, V2, V3, online crops
        rec.view_pooled = {}
        for branch in ('online', 'target'):
            pooled = [p for p, c in zip(rec.pooled, rec.calls) if c == branch]
            rec.view_pooled.update(
                {(branch, v): p for v, p in zip(self.views, pooled)})
        rec.rows = {f'{b}_{v}': (p, img[v])
                    for (b, v), p in rec.view_pooled.items()}
        # head calls: (V1 -> other, other -> V1) per matched view, crops
        call_img = []
        for other, (i1, io) in zip(self.views[1:], rec.matches):
            assert torch.equal(img['v1'][i1], img[other][io]), \
                'a V1 box is paired with a box of another image'
            call_img += [img['v1'][i1]] * 2 if i1.numel() else []
        call_img += [img['v1']] * (len(calls) - len(call_img))
        for name, rows in head_terms(model.head, calls).items():
            rec.rows[name] = (rows, call_img[int(name[4:name.index('_')])])
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
                    out[v].append(visible_boxes(  # mapped and clipped
                        [SOCO_BOXES[i][k] for k in ids], ids, mats[v][i],
                        size, 0.0))
                continue
            boxes, valid = rec.proposals  # V1 pixels, before the jitter
            slots = valid[i].nonzero()[:, 0].tolist()
            props = [boxes[i, k].double().numpy() for k in slots]
            out['v1'].append((np.array([shrink(b) for b in props]).reshape(
                -1, 4), slots))
            for v, size in zip(self.views[1:], SOCO_SIZES[1:]):
                rel = mats[v][i] @ np.linalg.inv(mats['v1'][i])
                out[v].append(visible_boxes(props, slots, rel, size,
                                            model.box_source.min_visible))
        return out

    def expected(self, before, data, rec):
        online = before.online_encoder
        target = ema_copy(before.target_net, online, MOMENTUM)
        exp = SimpleNamespace(pooled={}, proj={}, online=online,
                              pred=before.head.predictor)
        for name, mods in (('online', online), ('target', target)):
            for v in self.views:
                feats = per_image_features(
                    lambda x, m=mods: m.features(x).pyramid,
                    data['inputs'][v])
                exp.pooled[name, v] = pool_boxes(
                    feats, [b for b, _ in rec.boxes[v]], FPN_STRIDES, 7,
                    level)
                with torch.no_grad():
                    exp.proj[name, v] = mods.projector(
                        mods.box_embedder(exp.pooled[name, v]))
        if self.e2e:  # the heat map is the target C3 of each image's V1
            c3 = per_image_features(target.backbone, data['inputs']['v1'])
            exp.heat = torch.cat([f[before.box_source.heat_stage]
                                  for f in c3])
        return exp

    def check_geometry(self, model, data, rec, exp):
        for i in range(N):  # every image has pairs in both V2 and V3
            assert all(len(rec.boxes[v][i][1]) for v in self.views), i
        first = [rec.boxes['v1'][i][0][0] for i in range(N)]
        assert all(box_iou(first[0], b) < 0.9 for b in first[1:])
        if self.e2e:
            assert_close(rec.heat, exp.heat, 'heat map input')
            # the visibility rule is exercised: some boxes leave V3
            num_v1 = sum(len(ids) for _, ids in rec.boxes['v1'])
            for v in self.views[1:]:
                kept = sum(len(ids) for _, ids in rec.boxes[v])
                assert abs(float(rec.losses[f'heat_visible_{v}']) -
                           kept / num_v1) < 1e-6, v
            assert kept < num_v1
        else:
            levels = {level(b) for v in self.views
                      for boxes, _ in rec.boxes[v] for b in boxes}
            assert len(levels) >= 3, levels
        for b in ('online', 'target'):
            for v in self.views:
                assert_close(rec.view_pooled[b, v], exp.pooled[b, v], (b, v))

    def check_loss(self, model, data, rec, exp):
        img = {v: image_index([len(ids) for _, ids in rec.boxes[v]])
               for v in self.views}
        ids = {v: sum((ids for _, ids in rec.boxes[v]), [])
               for v in self.views}
        total, pairs = 0.0, 0
        with torch.no_grad():
            for other in self.views[1:]:
                matched = [(r1, ro) for r1 in range(len(ids['v1']))
                           for ro in range(len(ids[other]))
                           if img['v1'][r1] == img[other][ro] and
                           ids['v1'][r1] == ids[other][ro]]
                if not matched:
                    continue
                p1, po = map(list, zip(*matched))
                total = total + byol_rows(
                    exp.pred(exp.proj['online', 'v1'][p1]),
                    exp.proj['target', other][po]).mean() + byol_rows(
                        exp.pred(exp.proj['online', other][po]),
                        exp.proj['target', 'v1'][p1]).mean()
                pairs += 1
            assert_loss(rec.losses['loss_soco'], total / pairs, 'loss_soco')
            if self.e2e:
                want = byol_rows(exp.pred(self.crop_proj(exp, data, rec)),
                                 exp.proj['target', 'v1']).mean()
                assert_loss(rec.losses['loss_soco_crops'], want, 'crops')

    @staticmethod
    def crop_proj(exp, data, rec):
        """Online projections of the flipped enlarged crop of each V1 box,
        the box pooled from the crop's own features."""
        projs = []
        for i, (boxes, _) in enumerate(rec.boxes['v1']):
            for box in boxes:
                patch, inner = flipped_crop(data['inputs']['v1'][i:i + 1],
                                            box, CROP_SIZE, CROP_SCALE, 64)
                feats = exp.online.features(patch).pyramid
                lvl = level(inner)
                pooled = roi_feature(feats[lvl], inner, FPN_STRIDES[lvl], 7)
                projs.append(exp.online.projector(
                    exp.online.box_embedder(pooled[None])))
        return torch.cat(projs)


METHODS = {
    'insloc_fpn': InsLocSpec(c4=False),
    'insloc_c4': InsLocSpec(c4=True),
    'soco': SoCoSpec(e2e=False),
    'soco_e2e': SoCoSpec(e2e=True),
}
_BUILT = {}


def setup(name):
    """(spec, a fresh copy of the model, the preprocessed batch)."""
    spec = METHODS[name]
    if name not in _BUILT:
        model = spec.build()
        _BUILT[name] = (model, model.data_preprocessor(spec.batch(), True))
    model, data = _BUILT[name]
    return spec, copy.deepcopy(model), data


def with_inputs(data, inputs):
    return dict(inputs=inputs, data_samples=data['data_samples'])


@pytest.mark.parametrize('name', METHODS)
def test_every_sample_gets_a_gradient(name):
    spec, model, data = setup(name)
    inputs = input_grads(data['inputs'], spec.grad_views)
    losses = spec.run(model, with_inputs(data, inputs)).losses
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for v in spec.grad_views:
        per_image = sample_grad(inputs[v].grad)  # (N,)
        assert (per_image > 0).all(), \
            f'{name}: view {v}, gradient per image {per_image.tolist()}'


@pytest.mark.parametrize('name', METHODS)
def test_perturbing_one_sample_changes_only_its_rows(name):
    spec, model, data = setup(name)
    base = spec.run(copy.deepcopy(model), data).rows
    for j in range(N):
        gen = torch.Generator().manual_seed(j)
        inputs = {v: x.clone() for v, x in data['inputs'].items()}
        for x in inputs.values():  # every view of image j
            x[j] += 40 * torch.randn(x[j].shape, generator=gen)
        pert = spec.run(copy.deepcopy(model), with_inputs(data, inputs)).rows
        assert_only_sample_changes(base, pert, j, N)


def step_and_check(name, check):
    """One step, then ``spec.check_<check>`` against the expectation
    computed from the model as it was before the step."""
    spec, model, data = setup(name)
    before = copy.deepcopy(model)
    rec = spec.run(model, data)
    getattr(spec, f'check_{check}')(model, data, rec,
                                    spec.expected(before, data, rec))


@pytest.mark.parametrize('name', METHODS)
def test_roi_features_follow_each_views_homography(name):
    step_and_check(name, 'geometry')


@pytest.mark.parametrize('name', METHODS)
def test_loss_equals_the_formula(name):
    step_and_check(name, 'loss')


@pytest.mark.parametrize('name', [n for n in METHODS
                                  if METHODS[n].has_queue])
def test_queue_holds_the_batch_keys_at_the_pointer(name):
    step_and_check(name, 'queue')
