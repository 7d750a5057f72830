# Copyright (c) mmselfdet contributors. All rights reserved.
"""The zero-conversion path: a detector config loads the backbone and the
neck straight from a pretraining checkpoint with mmengine's ``Pretrained``
init and a key prefix, no export step (docs/transfer.md)."""
import copy
import os.path as osp

import torch
from mmengine.config import Config

from mmselfdet.registry import MODELS
from ..utils import REPO


def test_pretrained_init_with_prefix_loads_backbone_and_neck(insloc_fpn_ckpt):
    path, state = insloc_fpn_ckpt
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/benchmarks/mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-1x_coco.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=path,
                                       prefix='backbone.')
    model_cfg.neck.init_cfg = dict(type='Pretrained', checkpoint=path,
                                   prefix='neck.')
    model = MODELS.build(model_cfg)
    model.init_weights()
    got = model.state_dict()
    for k, v in state.items():
        if k.startswith(('backbone.', 'neck.')):
            assert torch.equal(got[k], v), k
    # the RoI head stays as initialised (randn weights were not copied)
    w = got['roi_head.bbox_head.shared_fcs.0.weight']
    assert not torch.equal(w, state['box_embedder.shared_fcs.0.weight'])
