# Copyright (c) mmselfdet contributors. All rights reserved.
"""The named box encoder (mmselfdet/models/utils/box_encoder.py) and the
checkpoints of before: InsLoc's and SoCo's target networks were an EMA of
an ``nn.Sequential`` of the parts present (keys ``<ema>.module.0.*``, ...);
such a state dict still loads, strictly, and gives the same losses."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_state_dict

from mmselfdet.export.transfer import export_state_dict
from mmselfdet.models.utils import BoxEncoder, build_momentum_encoder
from mmselfdet.registry import MODELS
from .box_checks import ema_off_online
from .test_insloc import batch_with_boxes, tiny_insloc
from .test_soco import batch as soco_batch
from .test_soco import tiny_soco



def insloc_batch():
    return batch_with_boxes([[4, 4, 40, 36], [10, 20, 60, 60]],
                            [[0, 0, 32, 32], [30, 30, 62, 50]])


# method -> (config, EMA attribute, batch)
CASES = {
    'insloc_fpn': (tiny_insloc, 'momentum_encoder', insloc_batch),
    'insloc_c4': (lambda: tiny_insloc(c4=True, jitter_levels=(0, )),
                  'momentum_encoder', insloc_batch),
    'soco': (tiny_soco, 'target_net', soco_batch),
}


def old_layout(model: nn.Module, ema_attr: str) -> dict:
    """The model's state dict as the old code saved it: the EMA built by
    ``build_momentum_encoder(*online_modules)`` (backbone, [neck],
    box_embedder, [projector] in a Sequential) holding the same values."""
    ema = getattr(model, ema_attr)
    parts = [getattr(ema.module, n) for n in ('backbone', 'neck',
                                               'box_embedder', 'projector')]
    old = build_momentum_encoder(
        *[copy.deepcopy(p) for p in parts if p is not None], momentum=0.01)
    old.steps.copy_(ema.steps)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith(ema_attr + '.')}
    state.update({f'{ema_attr}.{k}': v for k, v in old.state_dict().items()})
    return state


def losses_of(model, data):
    torch.manual_seed(0)
    with torch.no_grad():
        return model(**copy.deepcopy(data), mode='loss')


@pytest.mark.parametrize('name', CASES)
def test_old_positional_checkpoint_loads_with_identical_outputs(name):
    make_cfg, ema_attr, make_batch = CASES[name]
    torch.manual_seed(0)
    model = MODELS.build(make_cfg())
    model.eval()
    ema_off_online(getattr(model, ema_attr))  # target != online
    old = old_layout(model, ema_attr)
    assert f'{ema_attr}.module.0.conv1.weight' in old
    assert not any('.module.backbone.' in k for k in old)

    torch.manual_seed(1)  # another init: everything must come from `old`
    fresh = MODELS.build(make_cfg())
    fresh.eval()
    fresh.load_state_dict(old, strict=True)
    assert fresh.state_dict().keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    # mmengine's loader (load_checkpoint) walks the modules itself
    torch.manual_seed(1)
    other = MODELS.build(make_cfg())
    other.eval()
    load_state_dict(other, old, strict=True)

    # the export (mmdet names) of the old checkpoint and of the new model
    # are the same keys and values, in the same order
    want_export = export_state_dict(old, model.__class__.__name__)
    got_export = export_state_dict(fresh.state_dict(),
                                   model.__class__.__name__)
    assert list(got_export) == list(want_export)
    assert all(torch.equal(got_export[k], v) for k, v in want_export.items())

    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k

    data = model.data_preprocessor(make_batch(), False)
    want = losses_of(copy.deepcopy(model), data)
    got = losses_of(fresh, data)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), (name, k)


def test_box_encoder_parts_are_named_and_embed_per_level():
    cfg = tiny_insloc()
    torch.manual_seed(0)
    enc = BoxEncoder(backbone=cfg['backbone'], neck=cfg['neck'],
                     roi_pooler=cfg['roi_pooler'],
                     box_embedder=cfg['box_embedder']).eval()
    names = {n.split('.')[0] for n, _ in enc.named_parameters()}
    assert names == {'backbone', 'neck', 'box_embedder'}
    img = torch.randn(2, 3, 64, 64)
    rois = torch.tensor([[0, 4.0, 4, 40, 36], [1, 10, 20, 60, 60]])
    feats = enc.features(img)
    assert len(feats.backbone) == len(feats.pyramid) == 4
    assert feats.pyramid[0].shape[1] == 16  # the FPN's channels
    out = enc(img, rois)  # one (R, D) per level, embedder shared
    assert len(out) == 4 and out[0].shape == (2, 8)
    with torch.no_grad():
        pooled = enc.roi_pooler(feats.pyramid, rois)
        for lvl in range(4):
            assert torch.allclose(out[lvl], enc.box_embedder(pooled[lvl]),
                                  atol=1e-5)
