# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/models/downstream_heads/convfc_norm.py, the bbox_heads shim,
# the BaseSelfSupDetector alias
"""The downstream 4conv1fc heads keep mmdet's parameter names (so InsLoc /
SoCo exports load by name) and InsLoc's variant normalises after fc1."""
import torch
from mmdet.models.roi_heads.bbox_heads import Shared4Conv1FCBBoxHead

from mmselfdet.registry import MODELS


def _head(kind):
    return MODELS.build(dict(type=kind, in_channels=8, roi_feat_size=7,
                             conv_out_channels=8, fc_out_channels=16,
                             num_classes=3, norm_cfg=dict(type='BN')))


def test_syncbn_head_defaults_and_mmdet_names():
    head = MODELS.build(dict(type='Shared4Conv1FCSyncBNBBoxHead',
                             num_classes=3))
    assert head.norm_cfg['type'] == 'SyncBN' and head.fc_out_channels == 1024
    plain = Shared4Conv1FCBBoxHead(num_classes=3, norm_cfg=dict(type='BN'))
    assert set(head.state_dict()) == set(plain.state_dict())


def test_extra_norm_head_normalises_fc1_output():
    head = _head('Shared4Conv1FCExtraNormBBoxHead')
    plain = _head('Shared4Conv1FCSyncBNBBoxHead')
    extra = set(head.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith('fc_extra_norm.') for k in extra)
    head.train()
    x = torch.randn(6, 8, 7, 7)
    cls, reg = head(x)
    assert cls.shape == (6, 4) and reg.shape == (6, 12)
    # the classifier sees batch-normalised fc1 features: its input has
    # zero mean per channel in training mode
    seen = {}
    head.fc_cls.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    head(x)
    assert torch.allclose(seen['x'].mean(0), torch.zeros(16), atol=1e-5)


def test_former_names_are_the_same_objects():
    """models/bbox_heads/ (now downstream_heads/) and BaseSelfSupDetector
    (now BaseSelfSupervisor) still import, as the same objects, and the
    registry names are unchanged."""
    import mmselfdet.models.bbox_heads as old_pkg
    import mmselfdet.models.bbox_heads.convfc_norm as old_mod
    import mmselfdet.models.downstream_heads as new
    from mmselfdet.models.algorithms import (BaseSelfSupDetector,
                                             BaseSelfSupervisor, SoCo)
    for name in ('Shared4Conv1FCSyncBNBBoxHead',
                 'Shared4Conv1FCExtraNormBBoxHead'):
        cls = getattr(new, name)
        assert getattr(old_pkg, name) is cls
        assert getattr(old_mod, name) is cls
        assert MODELS.get(name) is cls
        assert cls.__module__ == 'mmselfdet.models.downstream_heads.' \
            'convfc_norm'
    assert BaseSelfSupDetector is BaseSelfSupervisor
    assert issubclass(SoCo, BaseSelfSupervisor)
