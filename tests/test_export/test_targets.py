# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/export/targets.py
"""Each export target round-trips a pretraining checkpoint: the written
file holds exactly the expected key layout (fixed lists in ./keys, written
from detectron2's and torchvision's naming, not from our key maps) and
every tensor equals its source."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmselfdet.export import (load_detectron2_pkl, mmdet_key_to_detectron2,
                              module_of, torchvision_resnet_keys)
from mmselfdet.export.exporter import ExportError, export_checkpoint
from ..utils import REPO
from .conftest import fixed_keys

FPN_1X = osp.join(REPO, 'configs/benchmarks/insloc/mask-rcnn_r50_fpn_ms-1x_coco.py')
C4_1X = osp.join(REPO, 'configs/benchmarks/insloc/mask-rcnn_r50_c4_ms-1x_coco.py')


def quiet(*_):
    pass


def test_torchvision_layout_rule_matches_fixed_list():
    assert torchvision_resnet_keys(50) == fixed_keys(
        'torchvision_resnet50_keys.txt')
    assert len(torchvision_resnet_keys(50)) == 318  # 320 with fc
    assert len(torchvision_resnet_keys(18)) == 120  # 122 with fc


def test_mmdet_round_trip(insloc_fpn_ckpt, tmp_path):
    path, state = insloc_fpn_ckpt
    out = str(tmp_path / 'insloc.pth')
    rep = export_checkpoint(path, out, downstream_config=FPN_1X, strict=True,
                            log=quiet)
    assert rep['missing'] == rep['unexpected'] == rep['shape_mismatch'] == []
    saved = torch.load(out)
    assert saved['meta']['method'] == 'InsLoc'
    exported = saved['state_dict']
    assert 'roi_head.bbox_head.shared_fcs.0.weight' in exported
    assert not any(k.startswith('roi_head.bbox_head.shared_fcs.1')
                   for k in exported)
    src = {'backbone.': 'backbone.', 'neck.': 'neck.',
           'roi_head.bbox_head.': 'box_embedder.'}
    for k, v in exported.items():
        pre = next(p for p in src if k.startswith(p))
        assert torch.equal(v, state[src[pre] + k[len(pre):]]), k
    assert set(rep['modules']) == {'backbone', 'neck', 'roi_head.bbox_head'}


def test_torchvision_round_trip_fpn_and_c4(insloc_fpn_ckpt, insloc_c4_ckpt,
                                          tmp_path):
    want = fixed_keys('torchvision_resnet50_keys.txt')
    path, state = insloc_fpn_ckpt
    out = str(tmp_path / 'tv.pth')
    # the neck and the box head have no torchvision counterpart: left out,
    # counted, and --strict would say so; the backbone is complete
    rep = export_checkpoint(path, out, target='torchvision',
                            downstream_config=FPN_1X, log=quiet)
    assert rep['left_out'] == []  # parts were restricted to the backbone
    sd = torch.load(out)
    assert list(sd) == want
    for k in want:
        assert torch.equal(sd[k], state['backbone.' + k]), k
    # C4: res2-res4 from the backbone, res5 from the RoI head
    path, state = insloc_c4_ckpt
    export_checkpoint(path, out, target='torchvision',
                      downstream_config=C4_1X, strict=True, log=quiet)
    sd = torch.load(out)
    assert sorted(sd) == sorted(want)
    assert torch.equal(sd['layer4.2.conv3.weight'], state[
        'box_embedder.shared_head.layer4.2.conv3.weight'])
    assert torch.equal(sd['layer3.5.bn2.running_var'],
                       state['backbone.layer3.5.bn2.running_var'])


def test_detectron2_round_trip_fpn(insloc_fpn_ckpt, tmp_path):
    path, state = insloc_fpn_ckpt
    out = str(tmp_path / 'insloc.pkl')
    export_checkpoint(path, out, target='detectron2',
                      downstream_config=FPN_1X, strict=True, log=quiet)
    data = load_detectron2_pkl(out)
    assert data['matching_heuristics'] is True
    assert isinstance(data['__author__'], str)
    model = data['model']
    assert sorted(model) == sorted(
        fixed_keys('detectron2_r50_keys.txt')
        + fixed_keys('detectron2_fpn_bn_4conv1fc_keys.txt'))
    assert all(isinstance(v, np.ndarray) for v in model.values())
    pairs = {
        'stem.conv1.norm.running_mean': 'backbone.bn1.running_mean',
        'res2.0.shortcut.norm.weight': 'backbone.layer1.0.downsample.1.weight',
        'res5.2.conv3.weight': 'backbone.layer4.2.conv3.weight',
        'backbone.fpn_lateral2.weight': 'neck.lateral_convs.0.conv.weight',
        'backbone.fpn_output5.norm.bias': 'neck.fpn_convs.3.bn.bias',
        'roi_heads.box_head.conv4.norm.weight':
        'box_embedder.shared_convs.3.bn.weight',
        'roi_heads.box_head.fc1.weight': 'box_embedder.shared_fcs.0.weight',
    }
    for d2, ours in pairs.items():
        assert np.array_equal(model[d2], state[ours].numpy()), d2


def test_detectron2_round_trip_c4(insloc_c4_ckpt, tmp_path):
    path, state = insloc_c4_ckpt
    out = str(tmp_path / 'c4.pkl')
    export_checkpoint(path, out, target='detectron2', downstream_config=C4_1X,
                      strict=True, log=quiet)
    model = load_detectron2_pkl(out)['model']
    # the C4 layout: res5 (the RoI head) under the same suffix names that
    # detectron2's matching finds in roi_heads.res5
    assert sorted(model) == sorted(fixed_keys('detectron2_r50_keys.txt'))
    assert np.array_equal(
        model['res5.0.shortcut.weight'],
        state['box_embedder.shared_head.layer4.0.downsample.0.weight'].numpy())


def test_detectron2_refuses_what_it_cannot_name():
    with pytest.raises(KeyError):
        mmdet_key_to_detectron2('bbox_head.reg_branches.0.0.weight')
    with pytest.raises(KeyError):  # FPN extra level (RetinaNet P6)
        mmdet_key_to_detectron2('neck.fpn_convs.4.conv.weight')


def test_strict_turns_a_mismatch_into_an_error(insloc_fpn_ckpt, tmp_path):
    path, _ = insloc_fpn_ckpt
    out = str(tmp_path / 'x.pth')
    # the FPN export into a C4 detector: res5 moves into the RoI head, the
    # neck and box-head keys have no place (unexpected), no shape conflict
    lines = []
    rep = export_checkpoint(path, out, downstream_config=C4_1X,
                            log=lines.append)
    assert rep['missing'] == [] and not rep['shape_mismatch']
    assert {module_of(k) for k in rep['unexpected']} == {
        'neck', 'roi_head.bbox_head'}
    assert any(ln.startswith('C4 detector: 60 backbone.layer4')
               for ln in lines)
    assert 'roi_head.shared_head.layer4.0.conv1.weight' in rep['matched']
    assert any(ln.startswith('warning:') for ln in lines)
    with pytest.raises(ExportError, match='--strict'):
        export_checkpoint(path, out, downstream_config=C4_1X, strict=True,
                          log=quiet)


def test_default_config_family_guard_and_mmengine_load(insloc_fpn_ckpt,
                                                      tmp_path):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmselfdet.registry import MODELS
    path, state = insloc_fpn_ckpt
    out = str(tmp_path / 'insloc.pth')
    lines = []
    # no --downstream-config: the method's family config is the reference
    rep = export_checkpoint(path, out, strict=True, log=lines.append)
    assert any('mask-rcnn_r50_fpn_ms-1x_coco.py' in ln for ln in lines)
    assert rep['missing'] == rep['unexpected'] == []
    # a family config refuses another method's checkpoint
    with pytest.raises(ExportError, match='loads a MoCoV2 export'):
        export_checkpoint(path, out, log=quiet, downstream_config=osp.join(
            REPO, 'configs/benchmarks/mocov2/mask-rcnn_r50_fpn_ms-1x_coco.py'))
    # what load_from does with the file: every exported tensor lands
    model = MODELS.build(Config.fromfile(FPN_1X).model)
    load_checkpoint(model, out, map_location='cpu', strict=False)
    got = model.state_dict()
    assert torch.equal(got['neck.fpn_convs.2.conv.weight'],
                       state['neck.fpn_convs.2.conv.weight'])
    assert torch.equal(got['roi_head.bbox_head.shared_convs.1.bn.running_var'],
                       state['box_embedder.shared_convs.1.bn.running_var'])
