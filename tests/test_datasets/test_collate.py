# Copyright (c) mmselfdet contributors. All rights reserved.
"""multi_view_collate: a batch that crosses the DataLoader's process
boundary as pseudo_collate's would (same values, dtypes and types), with
each fixed-size view stacked and the data samples pickled by value; the
preprocessor gives the same output for a stacked view as for its list (the
colour conversion and the batched augmentation included); every
multi-view pretraining config uses it."""
import copy
import glob
import io
import os.path as osp
import pickle
import warnings
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData
from torch.utils.data import DataLoader, Dataset

from mmselfdet.datasets import collate
from mmselfdet.datasets.collate import ByValue, multi_view_collate
from mmselfdet.registry import MODELS

from ..utils import REPO

S = 12


def sample(i: int, v3_size: int = S) -> dict:
    """One packed two-view sample, as PackViews gives (BGR uint8 views)."""
    gen = torch.Generator().manual_seed(i)
    inputs, samples = {}, {}
    for view, size in (('v1', S), ('v2', S), ('v3', v3_size)):
        inputs[view] = torch.randint(0, 256, (3, size, size), generator=gen,
                                     dtype=torch.uint8)
        s = DetDataSample(metainfo=dict(
            img_shape=(size, size), img_path=f'{i}.jpg',
            homography_matrix=np.eye(3, dtype=np.float32) * (i + 1)))
        n = i % 3  # 0, 1 or 2 boxes: empty tensors cross too
        s.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.rand(n, 4, generator=gen) * size),
            labels=torch.arange(n), instances_ids=torch.arange(n) + 10 * i)
        samples[view] = s
    return dict(inputs=inputs, data_samples=samples)


def assert_same_samples(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for view in a:
        assert len(a[view]) == len(b[view])
        for x, y in zip(a[view], b[view]):
            assert type(x) is type(y) is DetDataSample
            assert x.metainfo.keys() == y.metainfo.keys()
            np.testing.assert_array_equal(x.homography_matrix,
                                          y.homography_matrix)
            assert x.img_path == y.img_path
            gx, gy = x.gt_instances, y.gt_instances
            assert type(gx.bboxes) is type(gy.bboxes) is HorizontalBoxes
            assert torch.equal(gx.bboxes.tensor, gy.bboxes.tensor)
            for key in ('labels', 'instances_ids'):
                assert gx[key].dtype == gy[key].dtype == torch.int64
                assert torch.equal(gx[key], gy[key])


def test_fixed_size_views_stacked_others_listed():
    batch = [sample(i, v3_size=S + i) for i in range(3)]  # v3 differs
    ref = pseudo_collate(copy.deepcopy(batch))
    out = multi_view_collate(batch)
    for view in ('v1', 'v2'):
        assert torch.equal(out['inputs'][view],
                           torch.stack(ref['inputs'][view]))
    assert isinstance(out['inputs']['v3'], list)  # sizes differ
    assert all(torch.equal(a, b) for a, b in
               zip(out['inputs']['v3'], ref['inputs']['v3']))
    # outside a worker (num_workers=0) the data samples stay as they are
    assert type(out['data_samples']) is dict
    assert_same_samples(out['data_samples'], ref['data_samples'])
    # per-sample stacks of patches (4-D) and missing views stay lists
    patches = [dict(inputs=dict(p=torch.zeros(9, 3, 4, 4), q=None))] * 2
    out = multi_view_collate(patches)
    assert isinstance(out['inputs']['p'], list)
    assert out['inputs']['q'] == [None, None]


def test_by_value_pickles_tensors_inline():
    samples = pseudo_collate([sample(i) for i in range(4)])['data_samples']
    big = torch.arange(1 << 16, dtype=torch.float32)
    data = ForkingPickler.dumps(ByValue(dict(s=samples, big=big)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # e.g. "non-writable NumPy array"
        back = pickle.loads(data)
    assert type(back) is dict  # the wrapper is gone
    assert_same_samples(back['s'], samples)
    labels = back['s']['v1'][2].gt_instances.labels
    assert not labels.is_shared()  # inline, not a shared-memory segment
    labels += 1  # writable, owned
    assert torch.equal(labels, torch.tensor([1, 2]))
    assert not back['big'].is_shared() and torch.equal(back['big'], big)
    # torch's reduction (ForkingPickler) puts every tensor in shared memory
    plain = pickle.loads(ForkingPickler.dumps(samples))
    assert plain['v1'][2].gt_instances.labels.is_shared()


def test_by_value_leaves_other_tensors_to_torch():
    buf = io.BytesIO()
    pickler = collate._TensorsAsArrays(buf)
    param = torch.nn.Parameter(torch.ones(2))
    assert pickler.reducer_override(param) is NotImplemented
    assert pickler.reducer_override(torch.ones(2, requires_grad=True)) \
        is NotImplemented
    assert pickler.reducer_override(torch.ones(2, dtype=torch.bfloat16)) \
        is NotImplemented
    t = torch.arange(6).reshape(2, 3).t()  # not contiguous
    fn, (arr, ) = pickler.reducer_override(t)
    assert torch.equal(fn(arr), t)


class _Views(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return sample(i)


def test_through_a_worker_the_batch_equals_pseudo_collates():
    ours = DataLoader(_Views(), batch_size=4, num_workers=1,
                      collate_fn=multi_view_collate)
    ref = DataLoader(_Views(), batch_size=4, num_workers=0,
                     collate_fn=pseudo_collate)
    n = 0
    for a, b in zip(ours, ref):
        for view in ('v1', 'v2', 'v3'):
            assert torch.equal(a['inputs'][view],
                               torch.stack(b['inputs'][view]))
        assert type(a['data_samples']) is dict
        assert_same_samples(a['data_samples'], b['data_samples'])
        # the images came through shared memory, the samples by value
        assert a['inputs']['v1'].is_shared()
        assert not a['data_samples']['v1'][1].gt_instances.labels.is_shared()
        n += 1
    assert n == 2


@pytest.mark.parametrize('gpu_augment', [None, 'augment'])
def test_preprocessor_same_output_for_stacked_and_listed_views(gpu_augment):
    ops = [dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                saturation=0.4, hue=0.1, prob=0.8),
           dict(type='RandomFlip', prob=0.5)]
    cfg = dict(type='MultiViewDataPreprocessor', mean=[100, 110, 120],
               std=[50, 60, 70], bgr_to_rgb=True, pad_size_divisor=8,
               augment_seed=5)
    if gpu_augment:
        cfg['gpu_augment'] = dict(v1=ops, v2=ops)
    batch = [sample(i) for i in range(4)]
    listed = pseudo_collate(copy.deepcopy(batch))
    stacked = multi_view_collate(copy.deepcopy(batch))
    assert torch.is_tensor(stacked['inputs']['v1'])
    a = MODELS.build(cfg)(listed, training=True)
    b = MODELS.build(cfg)(stacked, training=True)
    for view in ('v1', 'v2', 'v3'):
        assert a['inputs'][view].shape == (4, 3, 16, 16)  # padded to 8
        torch.testing.assert_close(a['inputs'][view], b['inputs'][view],
                                   rtol=0, atol=0)
        for x, y in zip(a['data_samples'][view], b['data_samples'][view]):
            assert x.batch_input_shape == y.batch_input_shape == (16, 16)
            assert x.pad_shape == y.pad_shape
            assert x.metainfo.get('flip') == y.metainfo.get('flip')
            # (the preprocessor turned the boxes into tensors)
            assert torch.equal(x.gt_instances.bboxes, y.gt_instances.bboxes)
    # the colour order was converted on the stacked path too
    raw = batch[0]['inputs']['v3'].float()
    mean = torch.tensor([100., 110., 120.]).view(3, 1, 1)
    std = torch.tensor([50., 60., 70.]).view(3, 1, 1)
    torch.testing.assert_close(b['inputs']['v3'][0, :, :S, :S],
                               (raw.flip(0) - mean) / std)


def test_every_multi_view_config_collates_with_it():
    from mmengine.config import Config
    found = 0
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                 recursive=True)):
        if '_base_' in path:
            continue
        cfg = Config.fromfile(path)
        pre = cfg.get('model', {}).get('data_preprocessor') or {}
        if pre.get('type') != 'MultiViewDataPreprocessor' or \
                'train_dataloader' not in cfg:
            continue
        found += 1
        assert cfg.train_dataloader.get('collate_fn') == dict(
            type='multi_view_collate'), path
        # GPU configs pin their batches (the MoCo reference's loader) and
        # the preprocessor copies without blocking; the CPU toy configs
        # do not pin (torch warns without an accelerator)
        assert cfg.train_dataloader.get('pin_memory', False) is (
            not path.endswith('_toy.py')), path
        assert MODELS.build(pre)._non_blocking, path
    assert found >= 30
