# Copyright (c) mmselfdet contributors. All rights reserved.
"""Heat-map proposer (mmselfdet/models/proposers/heatmap.py), view geometry
(mmselfdet/models/utils/view_geometry.py) and the end-to-end SoCo variant
(mmselfdet/models/algorithms/soco.py, proposer=...)."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmselfdet.datasets.transforms.views import map_boxes
from mmselfdet.models.proposers.heatmap import (
    HeatMapProposer,
    connected_region,
    mask_to_boxes,
    normalized_heat,
)
from mmselfdet.models.utils import (
    clip_visible,
    crop_patches,
    map_boxes_batched,
    shared_region,
)
from mmselfdet.registry import MODELS
from mmselfdet.structures.box_ops import box_iou
from .helpers import (finite, momentum_model_and_sgd, params_without_grad,
                      random_views)
from .test_soco import tiny_soco

S = 64


def blob_features(blobs, size=32, channels=8):
    """(1, C, size, size) features that are ``value`` inside each
    ``(x1, y1, x2, y2, value)`` blob (grid cells) and 0 elsewhere."""
    feat = torch.zeros(1, channels, size, size)
    for x1, y1, x2, y2, value in blobs:
        feat[:, :, y1:y2, x1:x2] = value
    return feat


def test_heat_map_is_normalised_channel_mean_of_relu():
    feat = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]],
                          [[3.0, 2.0], [-1.0, 0.0]]]])
    heat = normalized_heat(feat, 'mean')
    # relu mean: [[2, 1], [1.5, 0]] -> min-max
    assert torch.allclose(heat[0], torch.tensor([[1.0, 0.5], [0.75, 0.0]]))
    l2 = normalized_heat(feat, 'l2', size=(4, 4))
    assert l2.shape == (1, 4, 4) and float(l2.max()) == 1.0
    assert float(normalized_heat(torch.zeros(2, 3, 4, 4)).abs().sum()) == 0


def test_connected_region_keeps_only_the_seed_component():
    binary = torch.zeros(1, 10, 10, dtype=torch.bool)
    binary[0, 1:4, 1:4] = True
    binary[0, 6:9, 5:9] = True
    region = connected_region(binary, torch.tensor([2 * 10 + 2]))
    assert region[0, 1:4, 1:4].all() and not region[0, 6:9, 5:9].any()
    assert mask_to_boxes(region).tolist() == [[1.0, 1.0, 4.0, 4.0]]
    # 8-connectivity: a diagonal neighbour joins
    binary[0, 4, 4] = True
    binary[0, 5, 5] = True
    region = connected_region(binary, torch.tensor([2 * 10 + 2]))
    assert region[0, 6:9, 5:9].all()


def test_hot_blob_yields_a_box_on_the_blob():
    feat = blob_features([(8, 12, 20, 22, 1.0)])
    proposer = HeatMapProposer(num_boxes=1, map_size=None,
                               thresholds=(0.5, ), aspect_range=None)
    boxes, valid, stats = proposer(feat, (64, 64),
                                   generator=torch.Generator().manual_seed(0))
    # grid cells x2 -> image pixels
    expected = torch.tensor([[16.0, 24.0, 40.0, 44.0]])
    assert valid.tolist() == [[True]]
    assert float(box_iou(boxes[0], expected)[0, 0]) > 0.95
    assert float(stats['heat_fallback']) == 0.0


@pytest.mark.parametrize('suppress', ['box', 'region'])
def test_suppression_yields_distinct_boxes_on_each_blob(suppress):
    blobs = [(2, 2, 10, 10, 1.0), (18, 16, 30, 28, 0.8)]
    feat = blob_features(blobs)
    proposer = HeatMapProposer(num_boxes=2, map_size=None, thresholds=(0.5, ),
                               threshold_mode='absolute', suppress=suppress,
                               aspect_range=None)
    for seed in range(5):
        boxes, valid, _ = proposer(feat, (32, 32),
                                   generator=torch.Generator().manual_seed(
                                       seed))
        assert valid.all()
        truth = torch.tensor([b[:4] for b in blobs], dtype=torch.float)
        iou = box_iou(boxes[0], truth)
        # each box sits on one blob, and the two blobs are both found
        assert sorted(iou.argmax(1).tolist()) == [0, 1]
        assert float(iou.max(1).values.min()) > 0.9


def test_without_suppression_the_same_blob_is_found_again():
    """The control for the test above: suppression is what separates."""
    feat = blob_features([(2, 2, 10, 10, 1.0), (18, 16, 30, 28, 0.05)])
    proposer = HeatMapProposer(num_boxes=2, map_size=None, thresholds=(0.5, ),
                               threshold_mode='absolute', aspect_range=None,
                               suppress='none')
    boxes, valid, _ = proposer(feat, (32, 32),
                               generator=torch.Generator().manual_seed(0))
    assert valid.all()
    assert float(box_iou(boxes[0, :1], boxes[0, 1:])[0, 0]) == 1.0


def test_region_restricts_centers_and_is_the_fallback():
    feat = blob_features([(2, 2, 10, 10, 1.0), (18, 16, 30, 28, 0.8)])
    proposer = HeatMapProposer(num_boxes=2, map_size=None, thresholds=(0.5, ),
                               threshold_mode='absolute', aspect_range=None)
    region = torch.tensor([[16.0, 14.0, 32.0, 32.0]])
    boxes, valid, stats = proposer(feat, (32, 32), region=region,
                                   generator=torch.Generator().manual_seed(0))
    # only the second blob lies in the region: one box on it, one empty slot
    assert valid.tolist() == [[True, False]]
    assert boxes[0, 0].tolist() == [18.0, 16.0, 30.0, 28.0]
    # no heat at all: one fallback box, the region
    boxes, valid, stats = proposer(torch.zeros(1, 4, 8, 8), (32, 32),
                                   region=region)
    assert valid.tolist() == [[True, False]]
    assert boxes[0, 0].tolist() == region[0].tolist()
    assert float(stats['heat_fallback']) == 1.0


def test_shape_filters_reject_small_and_thin_boxes():
    feat = blob_features([(2, 2, 4, 4, 1.0), (10, 2, 30, 5, 0.9),
                          (12, 12, 24, 24, 0.7)])
    proposer = HeatMapProposer(num_boxes=3, map_size=None, thresholds=(0.5, ),
                               threshold_mode='absolute', num_draws=20,
                               min_size=4, aspect_range=(1 / 3, 3))
    boxes, valid, _ = proposer(feat, (32, 32),
                               generator=torch.Generator().manual_seed(0))
    assert valid[0].tolist() == [True, False, False]
    assert boxes[0, 0].tolist() == [12.0, 12.0, 24.0, 24.0]


def test_proposer_rejects_bad_config():
    with pytest.raises(ValueError, match='threshold_mode'):
        HeatMapProposer(threshold_mode='percent')
    with pytest.raises(ValueError, match='thresholds'):
        HeatMapProposer(thresholds=(1.5, ))
    with pytest.raises(ValueError, match='suppress'):
        HeatMapProposer(suppress='gauss')


def test_map_boxes_batched_matches_the_view_makers_numpy_mapping():
    rng = np.random.default_rng(0)
    mats = []
    for flip in (False, True):
        mat = np.array([[0.5, 0, -3], [0, 0.7, 4], [0, 0, 1]])
        if flip:
            mat = np.array([[-1, 0, 64], [0, 1, 0], [0, 0, 1]]) @ mat
        mats.append(mat)
    xy = rng.uniform(0, 50, (2, 3, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (2, 3, 2))], -1)
    out = map_boxes_batched(torch.tensor(boxes, dtype=torch.float32),
                            torch.tensor(np.stack(mats)))
    for i in range(2):
        np.testing.assert_allclose(out[i].numpy(), map_boxes(boxes[i],
                                                             mats[i]),
                                   atol=1e-4)


def test_clip_visible_and_shared_region():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [50.0, 0.0, 90.0, 20.0],
                          [70.0, 70.0, 80.0, 80.0]])
    clipped, vis = clip_visible(boxes, (64, 64), 0.5)
    assert vis.tolist() == [True, False, False]  # 14/40 inside, outside
    assert clipped[1].tolist() == [50.0, 0.0, 64.0, 20.0]
    # V1 = whole 64 px image (identity); V2 sees its left half scaled 2x,
    # V3 its top half: V1 region both see = top-left quarter
    eye = torch.eye(3, dtype=torch.float64)[None]
    v2 = torch.tensor([[[2.0, 0, 0], [0, 1, 0], [0, 0, 1]]],
                      dtype=torch.float64)
    v3 = torch.tensor([[[1.0, 0, 0], [0, 2, 0], [0, 0, 1]]],
                      dtype=torch.float64)
    region = shared_region(eye, [v2, v3], [(64, 64), (64, 64)], (64, 64))
    assert region.tolist() == [[0.0, 0.0, 32.0, 32.0]]


def test_crop_patches_keep_the_box_content():
    img = torch.zeros(1, 1, 64, 64)
    img[0, 0, 20:40, 10:30] = 1.0  # a bright box x 10-30, y 20-40
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    patches, inner = crop_patches(img, boxes, torch.zeros(1, dtype=torch.long),
                                  size=32, scale_range=(2.0, 2.0),
                                  flip_prob=0.0)
    # 2x enlarged box -> the box is the central half of the patch
    assert inner[0].tolist() == [8.0, 8.0, 24.0, 24.0]
    assert float(patches[0, 0, 10:22, 10:22].min()) > 0.99
    assert float(patches[0, 0, :6].max()) < 0.01
    # a box whose left half is bright: flipped, the right half is
    wide = torch.tensor([[10.0, 20.0, 50.0, 40.0]])
    flipped, inner_f = crop_patches(img, wide, torch.zeros(1,
                                                           dtype=torch.long),
                                    size=32, scale_range=(1.0, 1.0),
                                    flip_prob=1.0)
    assert inner_f[0].tolist() == [0.0, 0.0, 32.0, 32.0]
    assert float(flipped[0, 0, 4:28, 18:30].min()) > 0.99
    assert float(flipped[0, 0, 4:28, 2:14].max()) < 0.01


def e2e_cfg(**kw):
    cfg = tiny_soco()
    cfg.update(proposer=dict(type='HeatMapProposer', num_boxes=3, map_size=16,
                             thresholds=(0.3, 0.6), threshold_mode='absolute',
                             suppress='region', aspect_range=None),
               heat_stage=1,
               # the test views have no un-augmented 'raw' view: crops
               # are resampled from V1
               extra_crops=dict(num_crops=2, size=32, scale=(1.0, 1.5),
                                source='v1'))
    cfg.update(kw)
    return cfg


def e2e_batch(n=2):
    """Views without boxes: V1 the image, V2 its left half x2 (flipped for
    the second image), V3 its bottom half at half size."""
    data = random_views(n=n, size=S, names=('v1', 'v2', 'v3'))
    v2 = np.array([[2.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    flip = np.array([[-1.0, 0, S], [0, 1, 0], [0, 0, 1]])
    v3 = np.array([[1.0, 0, 0], [0, 1, -32], [0, 0, 1]])
    mats = dict(v1=[np.eye(3)] * n, v2=[v2, flip @ v2], v3=[v3] * n)
    data['data_samples'] = {}
    for view in ('v1', 'v2', 'v3'):
        samples = []
        for i in range(n):
            s = DetDataSample(metainfo=dict(
                img_shape=(S, S), homography_matrix=mats[view][i]))
            s.gt_instances = InstanceData(
                bboxes=HorizontalBoxes(torch.zeros(0, 4)),
                labels=torch.zeros(0, dtype=torch.long))
            samples.append(s)
        data['data_samples'][view] = samples
    return data


def test_e2e_boxes_are_mapped_into_the_views():
    torch.manual_seed(0)
    model = MODELS.build(e2e_cfg(jitter=None))
    data = model.data_preprocessor(e2e_batch(), True)
    imgs = model.get_views(data['inputs'])
    samples = [data['data_samples'][v] for v in model.views]
    out = model.box_source(imgs, samples, model.backbone(imgs[0]))
    boxes, ids, stats = out.boxes, out.ids, out.stats  # heat_stage 1
    for i in range(2):
        # every V1 box lies in the region V2 and V3 see (x < 32, y >= 32
        # up to the box extent); its V2 copy is the mapped V1 box
        for box, idx in zip(boxes[1][i], ids[1][i]):
            v1_box = boxes[0][i][ids[0][i] == idx][0]
            x1, x2 = 2 * v1_box[0], 2 * v1_box[2]
            if i == 1:
                x1, x2 = S - x2, S - x1
            exp = torch.stack([x1, v1_box[1], x2, v1_box[3]]).clamp(0, S)
            assert torch.allclose(box, exp, atol=1e-4)
    assert 0 < float(stats['heat_boxes']) <= 3
    assert 'heat_visible_v2' in stats and 'heat_visible_v3' in stats


def test_e2e_two_steps_gradients_in_backbone_fpn_head():
    model, opt = momentum_model_and_sgd(e2e_cfg())
    for step in range(2):
        data = model.data_preprocessor(e2e_batch(), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        assert float(losses['loss_soco_crops']) > 0
        opt.zero_grad()
        (losses['loss_soco'] + losses['loss_soco_crops']).backward()
        if step == 0:
            # FPN levels that no heat box selected (by size) get no
            # gradient; everything else does
            missing = params_without_grad(model)
            assert all(n.startswith(('neck.lateral_convs.', 'neck.fpn_convs.'))
                       for n in missing), missing
            assert len(missing) < len([n for n, _ in model.named_parameters()
                                       if n.startswith('neck.')])
            assert all(p.grad is None for p in model.target_net.parameters())
            # the crop loss alone reaches backbone, FPN and head too
            opt.zero_grad()
            data = model.data_preprocessor(e2e_batch(), True)
            model(**data, mode='loss')['loss_soco_crops'].backward()
            for name in ('backbone.conv1.weight',
                         'neck.lateral_convs.3.conv.weight',
                         'box_embedder.shared_convs.0.conv.weight',
                         'box_embedder.shared_fcs.0.weight'):
                grad = dict(model.named_parameters())[name].grad
                assert grad is not None and float(grad.abs().sum()) > 0, name
        opt.step()


def test_e2e_config_errors():
    with pytest.raises(ValueError, match='extra_crops needs a proposer'):
        MODELS.build(dict(tiny_soco(), extra_crops=dict(num_crops=1)))
    with pytest.raises(KeyError, match='unknown extra_crops'):
        MODELS.build(e2e_cfg(extra_crops=dict(crops=2)))
    with pytest.raises(KeyError, match='homography_matrix'):
        model = MODELS.build(e2e_cfg())
        data = model.data_preprocessor(e2e_batch(), True)
        for s in data['data_samples']['v2']:
            del s.homography_matrix
        model(**data, mode='loss')
