# Copyright (c) mmselfdet contributors. All rights reserved.
"""The ``*-gpuaug`` configs (issue 18): each moves exactly its base config's
per-view pixel augmentations from the CPU pipeline into
``data_preprocessor.gpu_augment`` - the same op dicts in the same order,
none left on the CPU (no double augmentation), none lost - and the toy ones
train a step with the views augmented on the batch.

Building every config's model and transforms is
``test_configs.py::test_pretrain_config_builds`` (it globs these files).
"""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import FUNCTIONS, init_default_scope

from mmselfdet.registry import DATASETS, MODELS

from .utils import REPO

#: the pixel ops MultiViewDataPreprocessor(gpu_augment=...) can run
PIXEL_OPS = {'ColorJitter', 'RandomGrayscale', 'GaussianBlur', 'Solarize',
             'RandomFlip', 'RandomCutoutInBoxes'}
#: gpuaug config -> the config whose CPU augmentation it moves
BASES = {
    'mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py':
        'mocov2/mocov2_r18_1xb32-180it_toy.py',
    'mocov2/mocov2-gpuaug_r50_8xb32-coslr-200e_in1k.py':
        'mocov2/mocov2_r50_8xb32-coslr-200e_in1k.py',
    'byol/byol-gpuaug_r50_16xb256-coslr-200e_in1k.py':
        'byol/byol_r50_16xb256-coslr-200e_in1k.py',
    'insloc/insloc-gpuaug_r18_fpn_1xb32-150it_toy.py':
        'insloc/insloc_r18_fpn_1xb32-150it_toy.py',
    'insloc/insloc-gpuaug_r50_fpn_8xb32-coslr-200e_in1k.py':
        'insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py',
    'objcrop/mocov2-objcrop-gpuaug_r18_1xb32-150it_toy.py':
        'objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py',
    'objcrop/mocov2-objcrop-gpuaug_r50_8xb32-coslr-200e_coco.py':
        'objcrop/mocov2-objcrop_r50_8xb32-coslr-200e_coco.py',
    'soco/soco-gtboxes-gpuaug_r18_fpn_1xb32-150it_toy.py':
        'soco/soco-gtboxes_r18_fpn_1xb32-150it_toy.py',
    'soco/soco-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py':
        'soco/soco_r50_fpn_8xb32-lars-100e_in1k.py',
    'soco/soco-e2e-gpuaug_r18_fpn_1xb32-150it_toy.py':
        'soco/soco-e2e_r18_fpn_1xb32-150it_toy.py',
    'soco/soco-e2e-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py':
        'soco/soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
    'detco/detco-gpuaug_r18_1xb32-60it_toy.py':
        'detco/detco_r18_1xb32-60it_toy.py',
    'detco/detco-gpuaug_r50_8xb32-coslr-200e_in1k.py':
        'detco/detco_r50_8xb32-coslr-200e_in1k.py',
}
TOY = sorted(k for k in BASES if k.endswith('_toy.py'))


def _cfg(rel: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', rel))


def _plain(x):
    """Config dicts / lists -> plain Python, for exact comparison."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def view_pixel_ops(cfg: Config) -> dict:
    """``{view: [pixel op dicts in order]}`` of the CPU pipeline; a jigsaw
    view's entry is ``('patch', grid, ops)`` (its ``patch_pipeline``)."""
    out = {}
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type == 'PackViews':
            branches = dict(t.pipelines)
        elif t.type == 'MultiBranch':
            branches = {v: t[v] for v in t.branch_field}
        elif t.type == 'JigsawPatches':
            out[t.view_name + '/patches'] = (
                'patch', t.grid, _plain(t.get('patch_pipeline') or []))
            continue
        else:
            assert t.type not in PIXEL_OPS, f'{t.type} outside a view'
            continue
        for view, pipe in branches.items():
            out[view] = [_plain(op) for op in pipe if op.type in PIXEL_OPS]
    return out


def test_every_gpuaug_config_is_checked():
    found = {osp.relpath(p, osp.join(REPO, 'configs')) for p in glob.glob(
        osp.join(REPO, 'configs', '*', '*-gpuaug*.py'))}
    assert found == set(BASES)


@pytest.mark.parametrize('rel', sorted(BASES))
def test_gpuaug_moves_exactly_the_cpu_augmentation(rel):
    base, cfg = view_pixel_ops(_cfg(BASES[rel])), _cfg(rel)
    gpu = _plain(cfg.model.data_preprocessor.gpu_augment)
    cpu = view_pixel_ops(cfg)
    expected = {}
    for key, ops in base.items():
        if isinstance(ops, tuple):  # jigsaw: per-patch ops -> patch mode
            _, grid, patch_ops = ops
            assert cpu[key][2] == [], f'{rel}: {key} still augmented on CPU'
            if patch_ops:
                expected[key.split('/')[0]] = dict(ops=patch_ops,
                                                   patch_grid=grid)
        else:
            assert cpu[key] == [], f'{rel}: view {key} augmented twice'
            if ops:
                expected[key] = ops
    # the same ops, order and arguments; no view augmented that was not
    assert gpu == expected
    # the preprocessor accepts them (the op dicts build as batched ops)
    pre = MODELS.build(cfg.model.data_preprocessor)
    assert sorted(pre.gpu_augment) == sorted(expected)


def _toy_cfg(rel, toy_root):
    cfg = _cfg(rel)
    ds = cfg.train_dataloader.dataset
    inner = ds.dataset if 'dataset' in ds else ds  # MultiImageMixDataset
    inner.data_root = toy_root + '/'
    if 'queue_len' in cfg.model:
        cfg.model.queue_len = 16
    return cfg


@pytest.mark.parametrize('rel', TOY)
def test_toy_gpuaug_trains_a_step(rel, toy_root):
    cfg = _toy_cfg(rel, toy_root)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(4)])
    model = MODELS.build(cfg.model)
    model.train()
    pre = model.data_preprocessor
    # the views reach the model un-augmented: training mode augments them
    # on the batch, eval mode (no gpu_augment) does not
    # (copies: a flip on the batch marks the samples flipped)
    plain = pre(copy.deepcopy(batch), False)['inputs']
    with torch.no_grad():
        aug = pre(copy.deepcopy(batch), True)['inputs']
    for view in pre.gpu_augment:
        assert aug[view].shape == plain[view].shape
        assert not torch.equal(aug[view], plain[view]), view
    assert pre.augment_step == 1
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.train_step(batch, optim)
    assert pre.augment_step == 2
    assert all(torch.isfinite(v).all() for v in losses.values())


#: paper gpuaug config -> the toy config whose batch (same view names and
#: data samples) feeds its preprocessor in the device test below
TOY_TWIN = {
    'mocov2/mocov2-gpuaug_r50_8xb32-coslr-200e_in1k.py':
        'mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py',
    'byol/byol-gpuaug_r50_16xb256-coslr-200e_in1k.py':
        'mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py',  # view1 / view2
    'insloc/insloc-gpuaug_r50_fpn_8xb32-coslr-200e_in1k.py':
        'insloc/insloc-gpuaug_r18_fpn_1xb32-150it_toy.py',
    'objcrop/mocov2-objcrop-gpuaug_r50_8xb32-coslr-200e_coco.py':
        'objcrop/mocov2-objcrop-gpuaug_r18_1xb32-150it_toy.py',
    'soco/soco-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py':
        'soco/soco-gtboxes-gpuaug_r18_fpn_1xb32-150it_toy.py',
    'soco/soco-e2e-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py':
        'soco/soco-e2e-gpuaug_r18_fpn_1xb32-150it_toy.py',
    'detco/detco-gpuaug_r50_8xb32-coslr-200e_in1k.py':
        'detco/detco-gpuaug_r18_1xb32-60it_toy.py',
}


def _meta_fields(elem, out):
    for key, value in elem.items():
        if hasattr(value, 'items') and hasattr(value, 'metainfo'):
            _meta_fields(value, out)
        elif torch.is_tensor(getattr(value, 'tensor', value)):
            out.append((key, getattr(value, 'tensor', value).device.type))
    return out


@pytest.mark.parametrize(
    'rel', sorted(BASES) + sorted(BASES[t] for t in TOY))
def test_preprocessor_never_reads_values_back_from_the_device(rel,
                                                              toy_root):
    """The training preprocessor of every ``-gpuaug`` config (and of the
    toy CPU-augmentation bases) on the ``meta`` device: a tensor there has
    no values, so any read-back a GPU would have to wait for (``.item()``,
    ``int()``, ``nonzero`` or a boolean mask of a device tensor) raises.
    It must run through and leave the views and every data-sample tensor
    on the device (the draws stay on the CPU generator)."""
    toy = TOY_TWIN.get(rel, rel)
    data_cfg = _toy_cfg(toy, toy_root)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    dataset = DATASETS.build(data_cfg.train_dataloader.dataset)
    collate = FUNCTIONS.get(data_cfg.train_dataloader.collate_fn.type)
    batch = collate([dataset[i] for i in range(4)])
    pre = MODELS.build(_cfg(rel).model.data_preprocessor).to('meta')
    out = pre(batch, True)
    assert pre.augment_step == (1 if pre.gpu_augment else 0)
    assert sorted(out['inputs']) == sorted(batch['inputs'])
    for view, imgs in out['inputs'].items():
        assert imgs.device.type == 'meta' and imgs.shape[:2] == (4, 3), view
        fields = []
        for sample in out['data_samples'][view]:
            _meta_fields(sample, fields)
        assert fields and {d for _, d in fields} == {'meta'}, (view, fields)
