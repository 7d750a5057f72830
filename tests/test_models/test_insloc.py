# Copyright (c) mmselfdet contributors. All rights reserved.
"""InsLoc with the shared RoI pieces (roi/pooler.py, roi/embedders.py)."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmselfdet.models.algorithms.insloc import JITTER_DEFAULTS
from mmselfdet.models.utils import BoxEncoder
from mmselfdet.registry import MODELS
from .box_checks import box_iou, roi_feature
from .helpers import finite, params_without_grad, random_views

SIZE = 64
CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'insloc')


def tiny_insloc(c4: bool = False, jitter_levels=None):
    """A ResNet-18 InsLoc; ``jitter_levels`` None: P5 for FPN, none for C4
    (what the semantic tests expect)."""
    if jitter_levels is None:
        jitter_levels = () if c4 else (3, )
    cfg = dict(
        type='InsLoc', queue_len=16, feat_dim=8, momentum=0.01,
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='FPN', in_channels=[64, 128, 256, 512],
                  out_channels=16, num_outs=4, norm_cfg=dict(type='BN')),
        roi_pooler=dict(type='MultiLevelRoIPooler',
                        featmap_strides=(4, 8, 16, 32), out_size=7),
        box_embedder=dict(type='ConvFCBoxEmbedder', in_channels=16,
                          conv_channels=16, num_convs=2, fc_channels=32,
                          num_fcs=2, out_channels=8),
        head=dict(type='QueueContrastiveHead', temperature=0.2),
        jitter_levels=jitter_levels,
        jitter_cfg=dict(stride=8, sizes=(16, 32), ratios=(0.5, 1.0, 2.0),
                        iou_thr=0.5))
    if c4:
        cfg.update(
            backbone=dict(type='ResNet', depth=18, num_stages=3,
                          strides=(1, 2, 2), dilations=(1, 1, 1),
                          out_indices=(2, ), norm_cfg=dict(type='BN'),
                          zero_init_residual=False),
            neck=None,
            roi_pooler=dict(type='MultiLevelRoIPooler', featmap_strides=(16, ),
                            out_size=8),
            box_embedder=dict(type='ResLayerBoxEmbedder', depth=18,
                              projector=dict(type='MLPProjector',
                                             in_channels=512, hid_channels=32,
                                             out_channels=8)))
    return cfg


def batch_with_boxes(boxes_q, boxes_k, n=2):
    data = random_views(n=n, size=SIZE, names=('query', 'key'))
    data['data_samples'] = {}
    for view, boxes in (('query', boxes_q), ('key', boxes_k)):
        samples = []
        for b in boxes:
            s = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE)))
            s.gt_instances = InstanceData(
                bboxes=HorizontalBoxes(torch.tensor([b], dtype=torch.float)),
                labels=torch.zeros(1, dtype=torch.long))
            samples.append(s)
        data['data_samples'][view] = samples
    return data


def _train_two_steps(model):
    model.init_weights()
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.05)
    ptrs = []
    for step in range(2):
        data = model.data_preprocessor(
            batch_with_boxes([[4, 4, 40, 36], [10, 20, 60, 60]],
                             [[0, 0, 32, 32], [30, 30, 62, 50]]), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        if step == 0:
            assert params_without_grad(model) == []
            assert all(p.grad is None
                       for p in model.momentum_encoder.parameters())
        opt.step()
        ptrs.append(model.queue.ptr.tolist())
    return losses, ptrs


def test_insloc_fpn_trains_with_one_loss_and_queue_per_level():
    torch.manual_seed(0)
    model = MODELS.build(tiny_insloc())
    losses, ptrs = _train_two_steps(model)
    assert sorted(k for k in losses if 'loss' in k) == [
        f'lvl{i}_loss_contrast' for i in range(4)]
    assert 'jitter_fallback' in losses
    assert ptrs == [[2, 2, 2, 2], [4, 4, 4, 4]]  # every level's queue moves


def test_insloc_c4_variant():
    torch.manual_seed(0)
    model = MODELS.build(tiny_insloc(c4=True))
    losses, ptrs = _train_two_steps(model)
    assert [k for k in losses if 'loss' in k] == ['lvl0_loss_contrast']
    assert ptrs == [[2], [4]]


def test_roi_features_follow_the_box():
    """The query embedding is taken at the pasted box: moving the box moves
    the embedding; moving pixels outside the box does not."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_insloc(jitter_levels=()))
    model.eval()  # BN with running stats: samples are independent
    data = batch_with_boxes([[0, 0, 24, 24]], [[0, 0, 24, 24]], n=1)
    img = model.data_preprocessor(data, False)['inputs']['query']
    feats = model.online_encoder.features(img).pyramid

    def embed(box):
        from mmdet.structures.bbox import bbox2roi
        rois = bbox2roi([torch.tensor([box], dtype=torch.float)])
        pooled = model.roi_pooler(feats, rois)
        return model.online_encoder.embed_pooled(pooled)[-1]

    a = embed([0, 0, 24, 24])
    b = embed([32, 32, 56, 56])
    assert not torch.allclose(a, b)
    assert torch.allclose(a, embed([0, 0, 24, 24]))


def test_c4_jitter_pools_the_jittered_box(monkeypatch):
    """C4 with jitter on its one level (stride 16): the query RoI feature is
    RoIAlign at the drawn anchor, not at the pasted box."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_insloc(c4=True, jitter_levels=(0, )))
    model.init_weights()
    model.eval()  # BN on running statistics: the batch can be re-run
    boxes = [[4, 4, 40, 36], [10, 20, 60, 60]]
    data = model.data_preprocessor(
        batch_with_boxes(boxes, [[0, 0, 32, 32], [30, 30, 62, 50]]), False)
    rec = {}
    jitter, embed = model._jitter, BoxEncoder.embed_pooled

    def record_jitter(box, shape):
        out = jitter(box, shape)
        rec['jit'] = out[0]
        return out

    def record_embed(encoder, pooled):
        if encoder.box_embedder is model.box_embedder:
            rec['pooled'] = pooled[0].detach()  # (N, C, 8, 8)
        return embed(encoder, pooled)

    monkeypatch.setattr(model, '_jitter', record_jitter)
    monkeypatch.setattr(BoxEncoder, 'embed_pooled', record_embed)
    with torch.no_grad():
        losses = model(**data, mode='loss')
        feat = model.online_encoder.features(
            data['inputs']['query']).pyramid[0]  # (N, C, 4, 4)
    assert float(losses['jitter_fallback']) == 0
    for i, box in enumerate(boxes):
        jit = rec['jit'][i].tolist()
        assert box_iou(box, jit) > 0.5 and jit != box
        want = roi_feature(feat[i:i + 1], jit, 16, 8)
        assert torch.allclose(rec['pooled'][i], want, atol=1e-5)
        assert not torch.allclose(rec['pooled'][i],
                                  roi_feature(feat[i:i + 1], box, 16, 8),
                                  atol=1e-3)


def test_paper_configs_jitter_rule():
    """The paper configs jitter with the official rule: P5 for FPN, the C4
    level for C4 (its stride is the jitter grid's)."""
    fpn = Config.fromfile(
        osp.join(CONFIGS, 'insloc_r50_fpn_8xb32-coslr-200e_in1k.py')).model
    c4 = Config.fromfile(
        osp.join(CONFIGS, 'insloc_r50_c4_8xb32-coslr-200e_in1k.py')).model
    for cfg in (fpn, c4):
        resolved = {**JITTER_DEFAULTS, **cfg.jitter_cfg}
        assert {k: tuple(v) if isinstance(v, (list, tuple)) else v
                for k, v in resolved.items()} == JITTER_DEFAULTS
    assert JITTER_DEFAULTS['ratios'] == (0.5, 0.75, 1.0, 1.5, 2.0)
    assert JITTER_DEFAULTS['nms_thr'] == 0.7
    assert JITTER_DEFAULTS['center_offset'] == 0.0
    assert tuple(fpn.jitter_levels) == (3, )
    assert tuple(c4.jitter_levels) == (0, )
    assert tuple(c4.roi_pooler.featmap_strides) == (
        JITTER_DEFAULTS['stride'], )


def test_unknown_jitter_key_is_refused():
    with pytest.raises(ValueError, match='nms_threshold'):
        MODELS.build(dict(tiny_insloc(), jitter_cfg=dict(nms_threshold=0.7)))
