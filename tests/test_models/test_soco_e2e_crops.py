# Copyright (c) mmselfdet contributors. All rights reserved.
"""End-to-end SoCo extra crops cut from the raw view (issue 16): the crop's
pixels are the raw image at the V1 box mapped through the homographies,
before the crop's own photometric augmentation, drawn per crop on the
device (mmselfdet/models/utils/photometric.py)."""
from unittest import mock

import numpy as np
import pytest
import torch
from mmcv.ops import roi_align
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

import mmselfdet.models.heads.soco_crops as soco_module
from mmselfdet.models.utils import BoxEncoder
from mmselfdet.models.utils.photometric import (apply_photometric,
                                                draw_photometric)
from mmselfdet.registry import MODELS
from .test_heatmap_e2e import e2e_batch, e2e_cfg

S, RAW = 64, 96
# normalised inputs, as the configs: the crop is augmented in [0, 1] RGB
PREP = dict(type='MultiViewDataPreprocessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
FLIP = np.array([[-1.0, 0, S], [0, 1, 0], [0, 0, 1]])
CROP = 32


def raw_batch(n=2):
    """e2e_batch plus a raw view (the source at 96 px) and a flipped V1 for
    the second image, so raw and V1 differ by scale and flip."""
    data = e2e_batch(n)
    g = torch.Generator().manual_seed(5)
    data['inputs']['raw'] = [torch.randint(0, 256, (3, RAW, RAW), generator=g,
                                           dtype=torch.uint8)
                             for _ in range(n)]
    samples = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(
            img_shape=(RAW, RAW),
            homography_matrix=np.diag([RAW / S, RAW / S, 1.0])))
        s.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.zeros(0, 4)),
            labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    data['data_samples']['raw'] = samples
    v1 = data['data_samples']['v1'][1]
    v1.set_metainfo(dict(homography_matrix=FLIP @ v1.homography_matrix))
    return data


def run(extra, n=2):
    torch.manual_seed(0)
    model = MODELS.build(e2e_cfg(jitter=None, data_preprocessor=PREP,
                                 extra_crops=dict(num_crops=2, size=CROP,
                                                  scale=(1.0, 1.0),
                                                  flip_prob=0.0, **extra)))
    model.eval()
    data = model.data_preprocessor(raw_batch(n), True)
    rec = dict(aug_in=[], params=[], crops=[])
    real_apply, real_crop_loss = apply_photometric, model.crop_head.loss

    def on_apply(img, params):
        rec['aug_in'].append(img.detach().clone())
        rec['params'].append({k: v.clone() for k, v in params.items()})
        return real_apply(img, params)

    def on_crop_loss(*args):
        rec['v1_boxes'] = [b.detach().clone() for b in args[5]]
        return real_crop_loss(*args)

    real_features = BoxEncoder.features

    def on_features(encoder, img):
        if img.shape[-1] == CROP:
            rec['crops'].append(img.detach().clone())
        return real_features(encoder, img)

    with mock.patch.object(soco_module, 'apply_photometric',
                           side_effect=on_apply), \
            mock.patch.object(model.crop_head, 'loss',
                              side_effect=on_crop_loss), \
            mock.patch.object(BoxEncoder, 'features', autospec=True,
                              side_effect=on_features):
        losses = model(**data, mode='loss')
    return model, data, rec, losses


def expected_crops(model, data, v1_boxes, view):
    """RoIAlign of ``view`` at each V1 box mapped by hand (image 1's V1 is
    flipped; the raw view is the source x 1.5)."""
    rois = []
    for i, boxes in enumerate(v1_boxes):
        for x1, y1, x2, y2 in boxes.tolist():
            if view == 'raw':
                if i == 1:
                    x1, x2 = S - x2, S - x1
                x1, y1, x2, y2 = (v * RAW / S for v in (x1, y1, x2, y2))
            rois.append([i, x1, y1, x2, y2])
    rois = torch.tensor(rois, dtype=torch.float)
    return roi_align(data['inputs'][view], rois, (CROP, CROP), 1.0, 2,
                     'avg', True)


def to_unit(model, x):
    prep = model.data_preprocessor
    return ((x * prep.std.view(1, -1, 1, 1) + prep.mean.view(1, -1, 1, 1))
            / 255).clamp(0, 1)


def test_extra_crops_are_the_raw_view_warped_then_augmented():
    model, data, rec, losses = run({})
    assert float(losses['loss_soco_crops'].detach()) > 0
    want = expected_crops(model, data, rec['v1_boxes'], 'raw')
    assert want.shape[0] >= 2 and len(rec['aug_in']) == 2  # num_crops
    # before its own augmentation each crop is the raw view at the box
    for aug_in in rec['aug_in']:
        assert torch.allclose(aug_in, to_unit(model, want), atol=1e-5)
    # what the online network sees is the augmented crop, renormalised
    prep = model.data_preprocessor
    for aug_in, params, crop in zip(rec['aug_in'], rec['params'],
                                    rec['crops']):
        out = apply_photometric(aug_in, params) * 255
        out = (out - prep.mean.view(1, -1, 1, 1)) / prep.std.view(1, -1, 1, 1)
        assert torch.allclose(crop, out, atol=1e-4)
    # own parameters per crop: different crops, different draws
    b = torch.cat([p['brightness'] for p in rec['params']])
    assert len(set(b.tolist())) == len(b)
    # not resampled from V1: the V1 crops differ from what was cut
    from_v1 = expected_crops(model, data, rec['v1_boxes'], 'v1')
    assert not torch.allclose(to_unit(model, from_v1), rec['aug_in'][0],
                              atol=1e-2)


def test_without_augs_the_crop_is_the_raw_crop_and_v1_is_a_switch():
    model, data, rec, _ = run(dict(augs=None))
    want = expected_crops(model, data, rec['v1_boxes'], 'raw')
    for crop in rec['crops']:
        assert torch.allclose(crop, want, atol=1e-4)
    assert rec['aug_in'] == []
    # the earlier reading: resampled from the augmented V1 tensor
    model, data, rec, _ = run(dict(source='v1'))
    want = expected_crops(model, data, rec['v1_boxes'], 'v1')
    for crop in rec['crops']:
        assert torch.allclose(crop, want, atol=1e-4)
    assert rec['aug_in'] == []


def test_raw_source_needs_the_raw_view():
    model = MODELS.build(e2e_cfg(extra_crops=dict(num_crops=1, size=CROP)))
    data = model.data_preprocessor(e2e_batch(), True)
    with pytest.raises(KeyError, match="raw_view"):
        model(**data, mode='loss')
    with pytest.raises(ValueError, match='source'):
        MODELS.build(e2e_cfg(extra_crops=dict(source='v2')))
    with pytest.raises(KeyError, match='augs'):
        MODELS.build(e2e_cfg(extra_crops=dict(augs=dict(blurr=1))))


def test_photometric_ops():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(4, 3, 12, 12, generator=g)
    off = draw_photometric(4, dict(jitter_prob=0, gray_prob=0, blur_prob=0,
                                   solarize_prob=0), img.device)
    assert torch.equal(apply_photometric(img, off), img)
    # brightness only: a factor; hue 0 is the identity
    p = dict(off, jitter=torch.ones(4, dtype=torch.bool),
             brightness=torch.full((4, ), 0.5), contrast=torch.ones(4),
             saturation=torch.ones(4), hue=torch.zeros(4))
    assert torch.allclose(apply_photometric(img, p), img * 0.5, atol=1e-6)
    # a third of a turn of hue takes pure red to pure green
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    p1 = {k: v[:1] for k, v in p.items()}
    p1.update(brightness=torch.ones(1), hue=torch.full((1, ), 1 / 3))
    green = apply_photometric(red, p1)
    assert torch.allclose(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]),
                          atol=1e-5)
    # grayscale: BT.601 luma in every channel; solarize inverts >= 128/255
    p2 = dict(off, gray=torch.ones(4, dtype=torch.bool))
    gray = apply_photometric(img, p2)
    luma = (img * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(gray, luma[:, None].expand_as(img), atol=1e-6)
    p3 = dict(off, solarize=torch.ones(4, dtype=torch.bool))
    assert torch.allclose(apply_photometric(img, p3),
                          torch.where(img >= 128 / 255, 1 - img, img))
    # blur keeps a constant image and smooths a noisy one
    p4 = dict(off, sigma=torch.tensor([0.0, 1.0, 2.0, 1.5]))
    flat = torch.full((4, 3, 12, 12), 0.3)
    assert torch.allclose(apply_photometric(flat, p4), flat, atol=1e-6)
    blurred = apply_photometric(img, p4)
    assert torch.equal(blurred[0], img[0])
    assert float(blurred[1:].std()) < float(img[1:].std())
