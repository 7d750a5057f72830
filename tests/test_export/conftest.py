# Copyright (c) mmselfdet contributors. All rights reserved.
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmselfdet.registry import MODELS
from ..utils import REPO

DATA = osp.join(osp.dirname(__file__), 'keys')


def fixed_keys(name: str) -> list:
    """A key list of tests/test_export/keys (comment lines skipped)."""
    with open(osp.join(DATA, name)) as f:
        return [ln.strip() for ln in f if ln.strip() and ln[0] != '#']


def save_pretrain_checkpoint(config: str, path: str) -> dict:
    """Build a pretraining model from ``config`` (no training) and save it
    as an mmengine checkpoint with its config text in ``meta``; returns
    the state dict. Weights are randomised so that equal tensors mean the
    right tensor was copied."""
    cfg = Config.fromfile(osp.join(REPO, config))
    model = MODELS.build(cfg.model)
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=gen)
                 if v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(cfg=cfg.pretty_text)), path)
    return state


def _checkpoint_fixture(config: str):
    """A session fixture: (path, state dict) of ``config``'s model saved as
    a pretraining checkpoint."""
    @pytest.fixture(scope='session')
    def fixture(tmp_path_factory):
        path = str(tmp_path_factory.mktemp('ckpt') / 'pretrain.pth')
        return path, save_pretrain_checkpoint(config, path)
    return fixture


insloc_fpn_ckpt = _checkpoint_fixture(
    'configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py')
insloc_c4_ckpt = _checkpoint_fixture(
    'configs/insloc/insloc_r50_c4_8xb32-coslr-200e_in1k.py')
