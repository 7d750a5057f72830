# Copyright (c) mmselfdet contributors. All rights reserved.
"""Transfer sets: the whole-detector entry of DETR-style pretraining (class
layers left out), --parts narrowing, per-module report."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmselfdet.export import (export_state_dict, format_key_report,
                              key_report, module_of, transfer_set)
from mmselfdet.export.transfer import excluded_prefixes
from mmselfdet.registry import MODELS


def tiny_detector(base: str, num_classes: int):
    """A stock mmdet DETR-family detector, R18 and one encoder/decoder
    layer, ``num_classes`` classes (256 pseudo-classes in pretraining)."""
    import mmdet
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim',
                                   'configs', base))
    m = cfg.model
    m.backbone.update(depth=18, init_cfg=None)
    m.neck.in_channels = [128, 256, 512][-len(m.neck.in_channels):]
    m.encoder.num_layers = 1
    m.decoder.num_layers = 1
    m.bbox_head.num_classes = num_classes
    return MODELS.build(m).state_dict()


@pytest.mark.parametrize('method,base,cls', [
    ('DETR', 'detr/detr_r18_8xb2-500e_coco.py', 'bbox_head.fc_cls.'),
    ('DeformableDETR',
     'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
     'bbox_head.cls_branches.'),
])
def test_detector_transfer_leaves_out_only_the_class_layer(method, base, cls):
    pre = tiny_detector(base, num_classes=256)
    down = tiny_detector(base, num_classes=80)
    exported = export_state_dict(pre, method)
    assert not any(k.startswith(cls) for k in exported)
    assert len(exported) == len([k for k in pre if not k.startswith(cls)])
    rep = key_report(exported, down, [d for _, d in transfer_set(method)],
                     excluded_prefixes(method))
    assert rep['missing'] == rep['unexpected'] == rep['shape_mismatch'] == []
    # without the exclusion the class layer would clash on shape
    rep = key_report(export_state_dict(pre, 'detector'), down)
    assert rep['shape_mismatch'] and all(
        k.startswith(cls) for k, _, _ in rep['shape_mismatch'])
    assert 'bbox_head' in rep['modules'] and 'backbone' in rep['modules']


def test_parts_narrow_the_whole_detector_entry():
    assert transfer_set('DeformableDETR', ['backbone.']) == [
        ('backbone.', 'backbone.')]
    assert transfer_set('InsLoc', ['backbone.', 'neck.']) == [
        ('backbone.', 'backbone.'), ('neck.', 'neck.')]
    with pytest.raises(KeyError, match='selects nothing'):
        transfer_set('MoCoV2', ['neck.'])
    with pytest.raises(KeyError, match='MoCoV9'):
        transfer_set('MoCoV9')


def test_detector_entry_with_explicit_exclusions():
    sd = {'backbone.w': _t(2), 'bbox_head.retina_cls.w': _t(3),
          'bbox_head.retina_reg.w': _t(4)}
    out = export_state_dict(sd, 'detector', exclude=['bbox_head.retina_cls.'])
    assert sorted(out) == ['backbone.w', 'bbox_head.retina_reg.w']


def test_report_is_per_module_and_totals():
    exported = {'backbone.a': _t(1), 'neck.b': _t(2), 'roi_head.bbox_head.c':
                _t(3), 'roi_head.bbox_head.d': _t(3)}
    target = {'backbone.a': _t(1), 'neck.b': _t(5),
              'roi_head.bbox_head.c': _t(3), 'roi_head.bbox_head.e': _t(1),
              'rpn_head.x': _t(1)}
    rep = key_report(exported, target, ['backbone.', 'neck.', 'roi_head.'])
    assert rep['modules'] == {
        'backbone': dict(matched=1, missing=0, unexpected=0,
                         shape_mismatch=0),
        'neck': dict(matched=0, missing=0, unexpected=0, shape_mismatch=1),
        'roi_head.bbox_head': dict(matched=1, missing=1, unexpected=1,
                                   shape_mismatch=0)}
    lines = format_key_report(rep)
    assert ('total: matched 2, missing 1, unexpected 1, shape-mismatched 1'
            in lines)
    assert module_of('roi_head.shared_head.layer4.0.conv1.weight') == \
        'roi_head.shared_head'


def _t(n):
    import torch
    return torch.zeros(n)
