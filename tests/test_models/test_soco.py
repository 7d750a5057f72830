# Copyright (c) mmselfdet contributors. All rights reserved.
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmselfdet.models.algorithms.soco import match_boxes
from mmselfdet.registry import MODELS
from .helpers import (finite, momentum_model_and_sgd, params_without_grad,
                      random_views)

S = 64


def tiny_soco():
    return dict(
        type='SoCo', momentum=0.01, end_momentum=0.0,
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='FPN', in_channels=[64, 128, 256, 512],
                  out_channels=16, num_outs=4, norm_cfg=dict(type='BN')),
        roi_pooler=dict(type='MultiLevelRoIPooler',
                        featmap_strides=(4, 8, 16, 32), out_size=7,
                        mode='size', size_thresholds=(12, 24, 40)),
        box_embedder=dict(type='ConvFCBoxEmbedder', in_channels=16,
                          conv_channels=16, num_convs=4, fc_channels=32,
                          num_fcs=1, out_channels=None),
        projector=dict(type='MLPProjector', in_channels=32, hid_channels=64,
                       out_channels=16, norm_cfg=dict(type='BN1d'),
                       with_avg_pool=False),
        head=dict(type='BYOLHead', predictor=dict(
            type='MLPProjector', in_channels=16, hid_channels=64,
            out_channels=16, norm_cfg=dict(type='BN1d'),
            with_avg_pool=False)))


# one box per FPN level (sizes 8, 16, 32, 60 px) with ids 0..3
BOXES = [[0, 0, 8, 8], [10, 10, 26, 26], [20, 20, 52, 52], [2, 2, 62, 62]]


def batch(n=2, drop_in_v3=True):
    data = random_views(n=n, size=S, names=('v1', 'v2', 'v3'))
    data['data_samples'] = {}
    for view in ('v1', 'v2', 'v3'):
        samples = []
        for i in range(n):
            ids = [0, 1, 2, 3]
            if view == 'v3' and drop_in_v3:
                ids = [3, 1]  # fewer boxes, other order
            s = DetDataSample(metainfo=dict(img_shape=(S, S)))
            s.gt_instances = InstanceData(
                bboxes=HorizontalBoxes(torch.tensor(
                    [BOXES[j] for j in ids], dtype=torch.float)),
                labels=torch.zeros(len(ids), dtype=torch.long),
                instances_ids=torch.tensor(ids))
            samples.append(s)
        data['data_samples'][view] = samples
    return data


def test_match_boxes_by_image_and_id():
    a = [torch.tensor([0, 1, 2]), torch.tensor([5])]
    b = [torch.tensor([2, 0]), torch.tensor([5, 6])]
    ia, ib = match_boxes(a, b)
    assert ia.tolist() == [0, 2, 3] and ib.tolist() == [1, 0, 2]


def test_level_assignment_by_box_size():
    pooler = MODELS.build(tiny_soco()['roi_pooler'])
    rois = torch.tensor([[0] + b for b in BOXES], dtype=torch.float)
    assert pooler.assign_levels(rois).tolist() == [0, 1, 2, 3]


def test_soco_two_steps_gradients_in_backbone_fpn_head():
    model, opt = momentum_model_and_sgd(tiny_soco())
    for step in range(2):
        data = model.data_preprocessor(batch(), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        opt.zero_grad()
        losses['loss_soco'].backward()
        if step == 0:
            assert params_without_grad(model) == []
            assert all(p.grad is None for p in model.target_net.parameters())
        opt.step()
    assert int(model.target_net.steps) == 2


def test_v1_boxes_match_only_within_their_pair():
    """SoCoViews(box_selection='per_pair') gives V1 one copy of a box per
    pair (``instances_pairs``: 1 = V1-V2, 2 = V1-V3); a copy made for one
    pair must not be matched with the other view."""
    from unittest import mock

    import mmselfdet.models.algorithms.soco as soco_module
    ids = dict(v1=[0, 1, 0, 2], v2=[0, 1], v3=[0, 2])
    pairs = dict(v1=[1, 1, 2, 2], v2=[1, 1], v3=[2, 2])
    data = batch(n=1)
    for view, samples in data['data_samples'].items():
        inst = samples[0].gt_instances
        n = len(ids[view])
        samples[0].gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.tensor(BOXES[:n],
                                                dtype=torch.float)),
            labels=torch.zeros(n, dtype=torch.long),
            instances_ids=torch.tensor(ids[view]),
            instances_pairs=torch.tensor(pairs[view]))
        del inst
    torch.manual_seed(0)
    model = MODELS.build(tiny_soco())
    calls = []

    def record(*args):
        out = match_boxes(*args)
        calls.append([o.tolist() for o in out])
        return out

    with mock.patch.object(soco_module, 'match_boxes', side_effect=record):
        model(**model.data_preprocessor(data, True), mode='loss')
    # V1-V2: V1 rows 0, 1 (pair 1) with V2 rows 0, 1; V1-V3: V1 rows 2, 3
    assert calls == [[[0, 1], [0, 1]], [[2, 3], [0, 1]]]


def test_match_boxes_keeps_only_allowed_rows():
    a = [torch.tensor([0, 1, 0]), torch.tensor([5, 5])]
    b = [torch.tensor([0]), torch.tensor([5])]
    keep = [torch.tensor([True, True, False]), torch.tensor([False, True])]
    ia, ib = match_boxes(a, b, keep)
    assert ia.tolist() == [0, 4] and ib.tolist() == [0, 1]


def test_match_boxes_equals_the_per_image_loop():
    """One ``nonzero`` over the batch gives the pairs a loop over the
    images gives, in the same order (images with no boxes included)."""
    gen = torch.Generator().manual_seed(0)

    def reference(ids_a, ids_b, keep_a):
        out_a, out_b, off_a, off_b = [], [], 0, 0
        for i, (a, b) in enumerate(zip(ids_a, ids_b)):
            eq = (a[:, None] == b[None, :]) & keep_a[i][:, None]
            ia, ib = eq.nonzero(as_tuple=True)
            out_a += (ia + off_a).tolist()
            out_b += (ib + off_b).tolist()
            off_a, off_b = off_a + a.numel(), off_b + b.numel()
        return out_a, out_b

    for trial in range(20):
        sizes = torch.randint(0, 5, (2, 6), generator=gen).tolist()
        ids_a = [torch.randint(0, 4, (n, ), generator=gen) for n in sizes[0]]
        ids_b = [torch.randint(0, 4, (n, ), generator=gen) for n in sizes[1]]
        keep = [torch.rand(n, generator=gen) < 0.8 for n in sizes[0]]
        ia, ib = match_boxes(ids_a, ids_b, keep)
        assert (ia.tolist(), ib.tolist()) == reference(ids_a, ids_b, keep)
        assert ia.dtype == ib.dtype == torch.long
    assert [t.numel() for t in match_boxes([], [])] == [0, 0]
