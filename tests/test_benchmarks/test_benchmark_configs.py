# Copyright (c) mmselfdet contributors. All rights reserved.
"""Every downstream config in configs/benchmarks builds its model and trains
two iterations on the toy data on CPU (dataset swapped to toy by the
options ``toy_swap.toy_options`` merges, as ``--cfg-options`` would), and
every pretraining method's export loads into its family's detectors with
zero missing keys in the transferred modules."""
import copy
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmselfdet.export import (excluded_prefixes, export_state_dict, key_report,
                              move_res5_to_roi_head, transfer_set)
from mmselfdet.registry import MODELS
from ..utils import REPO
from .toy_swap import toy_options

BENCH = osp.join(REPO, 'configs', 'benchmarks')
CONFIGS = sorted(c for c in glob.glob(osp.join(BENCH, '**', '*.py'),
                                      recursive=True)
                 if '/_base_/' not in c)
FAMILY = [c for c in CONFIGS if osp.dirname(c) != BENCH]


def _rel(path):
    return osp.relpath(path, BENCH)


def _innermost(ds):
    while 'pipeline' not in ds:
        ds = ds.get('dataset') or ds['datasets'][0]
    return ds


def _signature(cfg) -> str:
    """What a 2-iteration run exercises: the model and the train pipeline
    (not load_from / pretrain, which only say which file is loaded)."""
    return json.dumps([cfg.model.to_dict(),
                       _innermost(cfg.train_dataloader.dataset)['pipeline']],
                      sort_keys=True, default=str)


_PARSED = {}


def _config(path: str) -> Config:
    """A fresh copy of a parsed config (each file is parsed once)."""
    if path not in _PARSED:
        _PARSED[path] = Config.fromfile(path)
    return copy.deepcopy(_PARSED[path])


def _groups():
    groups = {}
    for c in CONFIGS:
        groups.setdefault(_signature(_config(c)), []).append(c)
    return list(groups.values())


GROUPS = _groups()


def test_zoo_is_complete():
    names = {_rel(c) for c in CONFIGS}
    for family in ('mocov2', 'byol', 'detco', 'objcrop', 'insloc', 'soco',
                   'soco-e2e', 'detr-pretrain'):
        assert any(n.startswith(family + '/') for n in names), family
    for protocol in ('mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-1x_coco.py',
                     'mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-2x_coco.py',
                     'mask-rcnn_r50-syncbn_c4_ms-1x_coco.py',
                     'retinanet_r50-syncbn_fpn_ms-1x_coco.py',
                     'faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py',
                     'deformable-detr_r50-syncbn_16xb2-50e_coco.py',
                     'detr_r50-syncbn_8xb2-150e_coco.py'):
        assert protocol in names
    # every config is covered by exactly one 2-iteration run below
    assert sorted(c for g in GROUPS for c in g) == CONFIGS


@pytest.mark.parametrize('group', GROUPS, ids=[_rel(g[0]) for g in GROUPS])
def test_config_trains_two_iterations_on_toy(group, toy_root, tmp_path):
    cfg = _config(group[0])
    syncbn = any(isinstance(m, torch.nn.SyncBatchNorm)
                 for m in MODELS.build(copy.deepcopy(cfg.model)).modules())
    # the papers' protocol: SyncBN, nothing frozen, BN in train mode
    if 'toy' not in group[0]:
        assert syncbn, group[0]
        assert cfg.model.backbone.frozen_stages == -1
        assert cfg.model.backbone.norm_eval is False
    cfg.merge_from_dict(toy_options(cfg, toy_root))
    cfg.work_dir = str(tmp_path)
    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    # not distributed: mmengine's Runner reverted every SyncBN to BN
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in runner.model.modules())
    runner.train()
    assert runner.iter == 2
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss), loss
    print(f'{_rel(group[0])} (+{len(group) - 1} identical): '
          f'{time.time() - t0:.1f} s')


_STATE = {}


def _state_dict(key, build):
    if key not in _STATE:
        _STATE[key] = build()
    return _STATE[key]


def _pretrained(config: str):
    """The state dict of a pretraining model built from its paper config
    (DETR-style pretraining: the stock detector with 256 pseudo-classes)."""
    return _state_dict(config, lambda: MODELS.build(
        _config(osp.join(REPO, config)).model).state_dict())


@pytest.mark.parametrize('path', FAMILY, ids=[_rel(c) for c in FAMILY])
def test_family_config_loads_its_methods_export(path):
    cfg = _config(path)
    pre = cfg.pretrain
    assert cfg.load_from and cfg.load_from.endswith('.pth')
    method, parts = pre.method, pre.parts
    pre_cfg = _config(osp.join(REPO, pre.config))
    assert pre_cfg.model.type == method
    # R50 as the paper trained it, never the toy backbone
    assert pre_cfg.model.backbone.depth == 50
    exported = export_state_dict(_pretrained(pre.config), method, parts)
    target = _state_dict(_signature(cfg), lambda: MODELS.build(
        copy.deepcopy(cfg.model)).state_dict())
    prefixes = [d for _, d in transfer_set(method, parts)]
    exported, moved = move_res5_to_roi_head(exported, target)
    if moved:  # a full ResNet into a C4 detector: res5 is its RoI head
        assert 'c4' in path and method != 'InsLoc'
        prefixes.append('roi_head.shared_head.')
    rep = key_report(exported, target, prefixes, excluded_prefixes(method))
    assert rep['missing'] == [], rep['missing'][:5]
    assert rep['unexpected'] == [], rep['unexpected'][:5]
    assert rep['shape_mismatch'] == [], rep['shape_mismatch'][:5]
    # what lands is what the method transfers (docs/methods.md §7)
    modules = set(rep['modules'])
    if method in ('InsLoc', 'SoCo') and not parts:
        assert modules == ({'backbone', 'roi_head.shared_head'} if 'c4' in
                           path else {'backbone', 'neck',
                                      'roi_head.bbox_head'}), modules
    elif method in ('DETR', 'DeformableDETR'):
        assert {'backbone', 'neck', 'bbox_head'} <= modules
    else:
        assert modules == ({'backbone', 'roi_head.shared_head'} if moved
                           else {'backbone'}), modules


def test_tools_train_runs_a_family_config_swapped_by_cfg_options(toy_root,
                                                                tmp_path):
    """The command-line path: tools/train.py with --cfg-options only."""
    opts = [
        'load_from=None', f'train_dataloader.dataset.data_root={toy_root}/',
        'train_dataloader.dataset.ann_file=annotations/train.json',
        'train_dataloader.dataset.data_prefix.img=train/',
        'train_dataloader.dataset.metainfo.classes='
        '(disc,square,triangle,ring,cross)',
        'train_dataloader.dataset.indices=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.2.scales=[(133,64),(133,80)]',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=100',
        'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None',
        'test_dataloader=None', 'test_cfg=None', 'test_evaluator=None',
        'default_hooks.logger.interval=1']
    res = subprocess.run(
        [sys.executable, 'tools/train.py',
         'configs/benchmarks/mocov2/retinanet_r50_fpn_ms-1x_coco.py',
         '--work-dir', str(tmp_path), '--cfg-options'] + opts,
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'Epoch(train) [1][2/2]' in out
