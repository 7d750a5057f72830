# Copyright (c) mmselfdet contributors. All rights reserved.
"""MultiViewDataPreprocessor.cast_data moves data samples in place, all of a
list's CPU tensors in one copy: the same fields with the same values,
dtypes, shapes and types as mmengine's ``BaseDataElement.to`` (values
through the packed buffer on the CPU, devices on the ``meta`` device, so
the device path runs on a CPU), the metainfo untouched, tensors already
there left as the same objects."""
import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import InstanceData

from mmselfdet.models.data_preprocessors.device_move import move_data_elements
from mmselfdet.registry import MODELS


def sample(i):
    s = DetDataSample(metainfo=dict(
        img_shape=(8, 8), homography_matrix=np.eye(3, dtype=np.float32) * i))
    s.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.rand(
            3, 4, generator=torch.Generator().manual_seed(i))),
        labels=torch.arange(3),
        instances_ids=torch.arange(3) + i)
    s.ignored_instances = InstanceData(labels=torch.zeros(0))
    # odd sizes and other dtypes: every chunk must land at its own offset
    s.gt_instances.flags = torch.tensor([True, False, True])
    s.gt_instances.scores = torch.arange(3, dtype=torch.float64) / (i + 3)
    s.gt_instances.half = torch.arange(3, dtype=torch.float16)
    return s


def fields(elem, prefix=''):
    out = {}
    for key, value in elem.items():
        if hasattr(value, 'items'):
            out.update(fields(value, f'{prefix}{key}.'))
        else:
            out[prefix + key] = value
    return out


def test_packed_move_round_trip_keeps_values_and_types():
    samples, ref = [sample(i) for i in range(3)], [sample(i)
                                                   for i in range(3)]
    assert move_data_elements(samples, 'cpu', force=True) is samples
    buffers = set()
    for a, b in zip(samples, ref):
        fa, fb = fields(a), fields(b)
        assert fa.keys() == fb.keys()
        for key in fb:
            assert type(fa[key]) is type(fb[key]), key
            ta = getattr(fa[key], 'tensor', fa[key])
            tb = getattr(fb[key], 'tensor', fb[key])
            assert ta.dtype == tb.dtype and torch.equal(ta, tb), key
            buffers.add(ta.untyped_storage().data_ptr())
    assert len(buffers) == 1  # one buffer: one host-to-device copy


def test_in_place_move_equals_mmengine_to_on_meta():
    ref = sample(2).to('meta')
    s = sample(2)
    hom = s.homography_matrix
    assert move_data_elements([s], torch.device('meta'))[0] is s
    assert s.homography_matrix is hom  # metainfo untouched
    got, want = fields(s), fields(ref)
    assert got.keys() == want.keys() == {
        'gt_instances.bboxes', 'gt_instances.labels', 'gt_instances.flags',
        'gt_instances.scores', 'gt_instances.half',
        'gt_instances.instances_ids', 'ignored_instances.labels'}
    for key in want:
        assert type(got[key]) is type(want[key]), key
        t = getattr(got[key], 'tensor', got[key])
        w = getattr(want[key], 'tensor', want[key])
        assert t.device.type == 'meta' and t.shape == w.shape
        assert t.dtype == w.dtype, key


def test_preprocessor_casts_nested_batches_like_mmengine():
    pre = MODELS.build(dict(type='MultiViewDataPreprocessor'))
    data = dict(inputs=dict(v1=[torch.zeros(3, 8, 8)]),
                data_samples=dict(v1=[sample(0), sample(1)]))
    labels = data['data_samples']['v1'][1].gt_instances.labels
    out = pre.cast_data(data)
    ref = BaseDataPreprocessor.cast_data(pre, dict(
        inputs=dict(v1=[torch.zeros(3, 8, 8)]),
        data_samples=dict(v1=[sample(0), sample(1)])))
    assert out.keys() == ref.keys()
    for a, b in zip(out['data_samples']['v1'], ref['data_samples']['v1']):
        assert type(a) is type(b) is DetDataSample
        fa, fb = fields(a), fields(b)
        assert fa.keys() == fb.keys()
        for key in fa:
            ta = getattr(fa[key], 'tensor', fa[key])
            tb = getattr(fb[key], 'tensor', fb[key])
            assert torch.equal(ta, tb), key
    # on its own device nothing is copied: the very same tensor
    assert out['data_samples']['v1'][1].gt_instances.labels is labels


def test_tensors_without_a_unit_stride_move_too():
    """The pipeline packs empty boxes / labels from numpy arrays: such a
    tensor has stride 0 (``torch.from_numpy(np.zeros((0, 4)))``), and so
    does a broadcast one-element tensor; neither can be viewed as bytes
    as it is. Every MoCo v2 view (no boxes) has them."""
    s = DetDataSample(metainfo=dict(img_shape=(8, 8)))
    s.gt_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.from_numpy(np.zeros((0, 4), np.float32))),
        labels=torch.from_numpy(np.zeros((0, ), np.int64)))
    s.ignored_instances = InstanceData(
        labels=torch.tensor([7]).expand(1), scores=torch.tensor(
            2.5, dtype=torch.float64).expand(1))
    assert s.gt_instances.labels.stride() == (0, )
    assert s.ignored_instances.scores.stride() == (0, )
    ref = fields(s.clone())
    move_data_elements([s], 'cpu', force=True)  # through the byte buffer
    got = fields(s)
    for key, want in ref.items():
        t, w = (getattr(x, 'tensor', x) for x in (got[key], want))
        assert t.dtype == w.dtype and t.shape == w.shape and torch.equal(
            t, w), key
    move_data_elements([s], torch.device('meta'))
    assert {getattr(v, 'tensor', v).device.type
            for v in fields(s).values()} == {'meta'}


def _same_sample(a, b):
    assert type(a) is type(b)
    ma, mb = a.metainfo, b.metainfo
    assert ma.keys() == mb.keys()
    for key in mb:
        assert np.array_equal(ma[key], mb[key]) if isinstance(
            mb[key], np.ndarray) else ma[key] == mb[key], key
    fa, fb = fields(a), fields(b)
    assert fa.keys() == fb.keys()
    for key in fb:
        assert type(fa[key]) is type(fb[key]), key
        assert torch.equal(fa[key], fb[key]), key


@pytest.mark.parametrize('stacked', [True, False])
@pytest.mark.parametrize('gpu_augment', [False, True])
@pytest.mark.parametrize('training', [False, True])
def test_view_forward_equals_mmdets(stacked, gpu_augment, training):
    """Per view, ``MultiViewDataPreprocessor`` sets the batch shapes and
    turns boxes into tensors field by field instead of through mmdet's
    ``DetDataPreprocessor.forward``: the same inputs, metainfo and fields
    (types included), with and without boxes moved by a batched flip."""
    cfg = dict(type='MultiViewDataPreprocessor', mean=[1., 2., 3.],
               std=[2., 3., 4.], bgr_to_rgb=True, pad_size_divisor=32,
               augment_seed=4)  # flips samples 1 (boxes) and 2 (none)
    if gpu_augment:
        cfg['gpu_augment'] = dict(v1=[dict(type='ColorJitter', prob=1.0),
                                      dict(type='RandomFlip', prob=0.5)])
    ours, theirs = MODELS.build(cfg), MODELS.build(cfg)
    theirs._view_forward = lambda data, training: DetDataPreprocessor.forward(
        theirs, data, training)
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (4, 3, 40, 36), generator=gen,
                         dtype=torch.uint8)

    def batch():
        samples = [sample(i) for i in range(4)]
        for s in samples:
            s.set_metainfo(dict(img_shape=(40, 36)))
        samples[2].gt_instances = samples[2].gt_instances[:0]  # no boxes
        return dict(inputs=dict(v1=imgs.clone() if stacked else list(
            imgs.clone())), data_samples=dict(v1=samples))

    a, b = ours(batch(), training), theirs(batch(), training)
    assert torch.equal(a['inputs']['v1'], b['inputs']['v1'])
    assert a['inputs']['v1'].shape == (4, 3, 64, 64)  # padded
    flipped = [s.metainfo.get('flip') for s in a['data_samples']['v1']]
    if gpu_augment and training:
        assert set(flipped) == {True, False}  # both kinds compared
    for x, y in zip(a['data_samples']['v1'], b['data_samples']['v1']):
        _same_sample(x, y)
        assert torch.is_tensor(x.gt_instances.bboxes)
        assert x.batch_input_shape == (64, 64)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_batched_augmentation_ignores_the_callers_autocast(dtype):
    """mmengine calls the preprocessor inside the optim wrapper's autocast
    (AMP configs): the batched ops must still compute in float32, the
    same pixels as without it (a float16 blur rounds otherwise)."""
    cfg = dict(type='MultiViewDataPreprocessor', mean=[1., 2., 3.],
               std=[2., 3., 4.], bgr_to_rgb=True, augment_seed=4,
               gpu_augment=dict(v1=[dict(type='ColorJitter', prob=1.0),
                                    dict(type='GaussianBlur', prob=1.0),
                                    dict(type='RandomFlip', prob=0.5)]))
    imgs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    want = MODELS.build(cfg)(dict(inputs=dict(v1=imgs.clone())),
                             True)['inputs']['v1']
    with torch.autocast('cpu', dtype=dtype):
        got = MODELS.build(cfg)(dict(inputs=dict(v1=imgs.clone())),
                                True)['inputs']['v1']
        assert torch.is_autocast_enabled('cpu')  # restored after the call
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_in_model_photometric_augmentation_ignores_autocast():
    """End-to-end SoCo augments its extra crops inside the (AMP) forward:
    float32 there too."""
    from mmselfdet.models.utils.photometric import (apply_photometric,
                                                    draw_photometric)
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(6, 3, 24, 24, generator=gen)
    params = draw_photometric(6, dict(blur_prob=1.0), torch.device('cpu'),
                              generator=gen)
    want = apply_photometric(img, params)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = apply_photometric(img, params)
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_without_autocast_on_torch_before_2_4(monkeypatch):
    """torch < 2.4 has no device argument to ``is_autocast_enabled``: the
    per-device queries are used (the declared range starts at 2.1)."""
    import types

    import mmselfdet.models.utils.photometric as photometric
    from mmselfdet.models.utils.photometric import without_autocast

    def old_api(*args):
        if args:
            raise TypeError('is_autocast_enabled() takes no arguments')
        return torch.is_autocast_enabled('cuda')
    # the module's view of torch only (torch.autocast itself uses the new
    # signature)
    monkeypatch.setattr(photometric, 'torch', types.SimpleNamespace(
        autocast=torch.autocast, is_autocast_enabled=old_api,
        is_autocast_cpu_enabled=torch.is_autocast_cpu_enabled))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with without_autocast(torch.device('cpu')):
            assert not torch.is_autocast_cpu_enabled()
        assert torch.is_autocast_cpu_enabled()
    with without_autocast(torch.device('cpu')):  # off: nothing to do
        assert not torch.is_autocast_cpu_enabled()
