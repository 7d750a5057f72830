# Copyright (c) mmselfdet contributors. All rights reserved.
"""InsLoc's transfer set lands in mmdet's Mask R-CNN with a
Shared4Conv1FCBBoxHead (with norm) — the paper's downstream detector."""
import os.path as osp

from mmengine.config import Config

from mmselfdet.export import export_state_dict, key_report, transfer_set
from mmselfdet.registry import MODELS
from ..utils import REPO


def test_insloc_fpn_export_matches_mask_rcnn_4conv1fc():
    pre = Config.fromfile(osp.join(
        REPO, 'configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py'))
    insloc = MODELS.build(pre.model)
    exported = export_state_dict(insloc.state_dict(), 'InsLoc')
    import mmdet
    target_cfg = Config.fromfile(osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask_rcnn',
        'mask-rcnn_r50_fpn_1x_coco.py'))
    target_cfg.model.backbone.init_cfg = None
    target_cfg.model.neck.norm_cfg = dict(type='BN')
    target_cfg.model.roi_head.bbox_head = dict(
        type='Shared4Conv1FCBBoxHead', in_channels=256, fc_out_channels=1024,
        roi_feat_size=7, num_classes=80, norm_cfg=dict(type='BN'),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[0., 0., 0., 0.],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_class_agnostic=False,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    target = MODELS.build(target_cfg.model).state_dict()
    rep = key_report(exported, target,
                     [d for _, d in transfer_set('InsLoc')])
    assert rep['shape_mismatch'] == []
    assert rep['unexpected'] == []
    assert rep['missing'] == []
    heads = [k for k in rep['matched'] if k.startswith('roi_head.bbox_head')]
    # 4 convs (conv weight + BN weight/bias/mean/var/count) + fc1 w/b
    assert any('shared_convs.3.bn' in k for k in heads)
    assert 'roi_head.bbox_head.shared_fcs.0.weight' in heads
    assert not any('shared_fcs.1' in k for k in heads)
    assert any(k.startswith('neck.') for k in rep['matched'])
