# Copyright (c) mmselfdet contributors. All rights reserved.
"""fp16 AMP (issue 18): mmcv 2.1's RoIAlign, sigmoid focal loss and
MSDeformAttn have no bf16 kernels, so every AMP run must autocast to
float16. AMP is either in the config (SoCo's paper configs) or
``tools/train.py --amp`` (the AMP twin of the config's wrapper, ``dtype``
left to torch's CUDA autocast default). The rule checked here: the dtype
an AMP wrapper resolves to on CUDA is float16 - for every AMP config as
it is, for ``--amp`` on a paper config of each model family with such
ops, and no config anywhere names bf16.
"""
import glob
import importlib.util
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from .utils import REPO

AMP_WRAPPERS = ('AmpOptimWrapper', 'NonFiniteGuardAmpOptimWrapper')
#: the mmcv-op users without bf16 kernels in mmcv 2.1 (our
#: MultiLevelRoIPooler is mmcv's RoIAlign per level)
ROI = 'MultiLevelRoIPooler'
#: configs that are AMP as they are
AMP_CONFIGS = [
    'soco/soco_r50_fpn_8xb32-lars-100e_in1k.py',
    'soco/soco_r50_fpn_8xb32-lars-400e_in1k.py',
    'soco/soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
    'soco/soco-e2e_r50_fpn_8xb32-lars-400e_in1k.py',
    'soco/soco-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py',
    'soco/soco-e2e-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py',
]
#: `--amp` on a paper config of each family (the rule does not depend on
#: the config: `--amp` never sets a dtype; a config could, the scan below)
AMP_FLAG_CONFIGS = {
    'insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py': ROI,
    'insloc/insloc-gpuaug_r50_fpn_8xb32-coslr-200e_in1k.py': ROI,
    'mocov2/mocov2-gpuaug_r50_8xb32-coslr-200e_in1k.py': None,
    'benchmarks/mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-1x_coco.py':
        'RoIAlign',
    'benchmarks/retinanet_r50-syncbn_fpn_ms-1x_coco.py': 'FocalLoss',
    'benchmarks/deformable-detr_r50-syncbn_16xb2-50e_coco.py':
        'DeformableDETR',  # mmcv's MultiScaleDeformableAttention inside
    'simdetr/simdetr_deformable-detr_r50_16xb2-50e_coco.py':
        'DeformableDETR',  # mmcv's MultiScaleDeformableAttention inside
}


@pytest.fixture(scope='module')
def train_tool():
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(REPO, 'tools', 'train.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # main() is not run
    return mod


def resolved_amp_dtype(optim_wrapper: dict) -> torch.dtype:
    """The autocast dtype of an AMP wrapper config on CUDA: its ``dtype``,
    else torch's CUDA autocast default (mmengine's ``autocast(dtype=None)``
    passes None through to ``torch.autocast``)."""
    assert optim_wrapper['type'] in AMP_WRAPPERS, optim_wrapper['type']
    dtype = optim_wrapper.get('dtype')
    if dtype is None:
        return torch.get_autocast_dtype('cuda')
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def with_amp_flag(cfg: Config, amp_of: dict) -> dict:
    """``cfg.optim_wrapper`` as ``tools/train.py --amp`` leaves it."""
    ow = dict(cfg.optim_wrapper)
    if ow['type'] not in amp_of.values():
        ow['type'] = amp_of.get(ow['type'], 'AmpOptimWrapper')
        ow['loss_scale'] = 'dynamic'
    return ow


def test_resolution_sees_an_explicit_dtype():
    assert resolved_amp_dtype(dict(type='AmpOptimWrapper')) == torch.float16
    assert resolved_amp_dtype(dict(type='AmpOptimWrapper',
                                   dtype='bfloat16')) == torch.bfloat16


@pytest.mark.parametrize('rel', AMP_CONFIGS)
def test_amp_config_is_fp16(rel):
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    assert ROI in str(cfg.model)  # SoCo's RoIAlign pooler
    assert resolved_amp_dtype(cfg.optim_wrapper) == torch.float16


@pytest.mark.parametrize('rel', sorted(AMP_FLAG_CONFIGS))
def test_amp_flag_gives_fp16(rel, train_tool):
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    op = AMP_FLAG_CONFIGS[rel]
    if op is not None:  # the family's op without a bf16 kernel is there
        assert op in str(cfg.model), (rel, op)
    ow = with_amp_flag(cfg, train_tool.AMP_OF)
    assert ow['type'] in AMP_WRAPPERS
    if cfg.optim_wrapper['type'].startswith('NonFiniteGuard'):
        assert ow['type'] == 'NonFiniteGuardAmpOptimWrapper'  # still guarded
    assert resolved_amp_dtype(ow) == torch.float16


def test_no_config_names_bf16():
    """An explicit dtype is the only way a config escapes the fp16 default:
    no config (bases included) may name bf16."""
    bad = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                recursive=True)
           if re.search(r'bfloat16|bf16', open(p).read())]
    assert bad == []
