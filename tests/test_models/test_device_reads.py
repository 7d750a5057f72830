# Copyright (c) mmselfdet contributors. All rights reserved.
"""A pretraining step that never waits for the device, checked on a CPU.

On a GPU every read of a device value (``.item()``, ``int()``, ``bool()``,
``nonzero``, a copy to the host) makes the host wait for all the kernels
queued before it, so the host can no longer run ahead of the device. On the
``meta`` device a tensor has no values: such a read raises, and so does an
op that mixes a CPU tensor into device ones (a tensor made without
``device=``), the other way code that passes every CPU test breaks on a
GPU. Here the toy config's model, preprocessor included, runs a
``train_step`` on ``meta`` with a plain ``OptimWrapper`` (the config's
``NonFiniteGuardOptimWrapper`` reads one flag per step by design, next to
the loss mmengine reads anyway).

The reads that remain by design, each replaced by a stand-in of the same
shapes on the same device here (``docs/benchmarks.md``, "Device reads
left in a step"): mmcv's RoIAlign has no ``meta`` kernel; the size-mode
RoI pooler (SoCo) finds each level's RoIs with ``nonzero`` as mmdet's
``SingleRoIExtractor`` does; InsLoc's anchor jitter runs on the host, on
a copy of the query boxes queued before the query forward
(``start_host_copy``: the host waits for that copy only).
End-to-end SoCo's heat-map proposer (data-dependent regions and NMS) is
not covered.
"""
import sys

import pytest
import torch
import torch.fx.experimental._config as fx_config
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import FUNCTIONS, init_default_scope
from torch.nn.modules.utils import _pair
from torch.utils._python_dispatch import TorchDispatchMode

from mmselfdet.registry import DATASETS, MODELS
from ..utils import REPO

CONFIGS = [
    'mocov2/mocov2_r18_1xb32-180it_toy.py',
    'mocov2/mocov2-gpuaug_r18_1xb32-180it_toy.py',
    'byol/byol_r18_1xb32-110it_toy.py',
    'detco/detco_r18_1xb32-60it_toy.py',
    'detco/detco-gpuaug_r18_1xb32-60it_toy.py',
    'objcrop/mocov2-objcrop_r18_1xb32-150it_toy.py',
    'objcrop/mocov2-objcrop-gpuaug_r18_1xb32-150it_toy.py',
    'objcrop/byol-objcrop_r18_1xb32-110it_toy.py',
]
#: configs whose step needs the stand-ins (RoIAlign, nonzero, jitter)
WITH_ROIS = [
    'insloc/insloc_r18_fpn_1xb32-150it_toy.py',
    'insloc/insloc-gpuaug_r18_fpn_1xb32-150it_toy.py',
    'soco/soco-gtboxes_r18_fpn_1xb32-150it_toy.py',
    'soco/soco-gtboxes-gpuaug_r18_fpn_1xb32-150it_toy.py',
]


def _meta_roi_align(input, rois, output_size, spatial_scale=1.0,
                    sampling_ratio=0, pool_mode='avg', aligned=True):
    """RoIAlign's shapes and devices (in the graph of ``input``)."""
    assert input.device == rois.device, (input.device, rois.device)
    assert rois.dim() == 2 and rois.size(1) == 5, rois.shape
    h, w = _pair(output_size)
    return input.new_zeros(rois.size(0), input.size(1), h, w) + \
        0 * input.sum()


def _meta_jitter(self, boxes, img_shape):
    """InsLoc's ``_jitter`` (on the host by design) as shapes."""
    return boxes.clone(), boxes.new_zeros(())


@pytest.fixture
def stand_ins(monkeypatch):
    import mmcv.ops  # noqa: F401  (mmcv.ops.roi_align is the function)

    import mmselfdet.models.utils.view_geometry as view_geometry
    from mmselfdet.models.algorithms.insloc import InsLoc
    monkeypatch.setattr(sys.modules['mmcv.ops.roi_align'], 'roi_align',
                        _meta_roi_align)
    monkeypatch.setattr(view_geometry, 'roi_align', _meta_roi_align)
    import mmselfdet.models.algorithms.insloc as insloc
    monkeypatch.setattr(InsLoc, '_jitter', _meta_jitter)
    # its host copy of the boxes (a meta tensor has no values to copy)
    monkeypatch.setattr(insloc, 'start_host_copy', lambda t: lambda: t)
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        yield


def _meta_step(rel, toy_root):
    cfg = Config.fromfile(f'{REPO}/configs/{rel}')
    ds = cfg.train_dataloader.dataset
    (ds.dataset if 'dataset' in ds else ds).data_root = toy_root + '/'
    if 'queue_len' in cfg.model:
        cfg.model.queue_len = 16
    init_default_scope('mmdet')
    torch.manual_seed(0)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    collate = FUNCTIONS.get(cfg.train_dataloader.collate_fn.type)
    batch = collate([dataset[i] for i in range(4)])
    model = MODELS.build(cfg.model).to('meta')
    model.train()
    optim = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer))
    losses = model.train_step(batch, optim)
    assert losses and all(v.device.type == 'meta'
                          for k, v in losses.items() if k.startswith('loss'))
    params = [p for p in model.parameters()]
    assert params and all(p.device.type == 'meta' for p in params)
    return losses


@pytest.mark.parametrize('rel', CONFIGS)
def test_train_step_never_reads_the_device(rel, toy_root):
    _meta_step(rel, toy_root)


class CountNonzero(TorchDispatchMode):
    """``nonzero`` calls on device (``meta``) tensors: reads on a GPU."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.nonzero.default and \
                args[0].device.type == 'meta':
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('rel', WITH_ROIS)
def test_train_step_with_rois_reads_only_where_documented(
        rel, toy_root, stand_ins):
    """InsLoc: no read (its jitter works on a host copy); SoCo: one
    ``nonzero`` per pyramid level in each of the 2 x 3 embeddings of the
    views (online and target, the size-mode pooler) and one per view pair
    matched (V1-V2, V1-V3)."""
    with CountNonzero() as reads:
        _meta_step(rel, toy_root)
    cfg = Config.fromfile(f'{REPO}/configs/{rel}').model
    expected = 0
    if cfg.type == 'SoCo':
        views, levels = len(cfg.views), len(cfg.roi_pooler.featmap_strides)
        expected = 2 * views * levels + views - 1
    assert reads.calls == expected
