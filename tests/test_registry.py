# Copyright (c) mmselfdet contributors. All rights reserved.
"""Every module of mmselfdet is registered in mmdet's registries under a
name that no mmdet / mmcv / mmengine module uses."""
import importlib
import subprocess
import sys
import warnings

import mmselfdet
from mmselfdet import registry as reg

REGISTRIES = {name: getattr(reg, name) for name in reg.__all__}


def _ours(registry):
    return {k: v for k, v in registry.module_dict.items()
            if v.__module__.startswith('mmselfdet')}


def test_expected_modules_registered():
    names = set()
    for r in REGISTRIES.values():
        names |= set(_ours(r))
    for expected in ('MoCoV2', 'FeatureQueue', 'MLPProjector',
                     'QueueContrastiveHead', 'MultiViewDataPreprocessor',
                     'UnlabeledDataset', 'RandomResizedCropWithBoxes',
                     'ColorJitter', 'GaussianBlur', 'PackViews',
                     'PackViewInputs', 'InstanceComposite', 'RandomCropViews',
                     'JigsawPatches', 'LoadImageRobust', 'RandomBoxJitter',
                     'ObjectAwareCrops', 'SoCoViews', 'BYOL', 'InsLoc',
                     'DetCo', 'BYOLHead', 'MultiLevelRoIPooler',
                     'ConvFCBoxEmbedder', 'ResLayerBoxEmbedder',
                     'MultiStageProjector', 'LARS', 'MomentumScheduleHook',
                     'CosineMomentumEMA', 'SoCo',
                     'LARSOptimWrapperConstructor', 'ViewsVisualizer',
                     'BoxEncoder', 'SelectiveSearchProposer',
                     'NonFiniteGuardOptimWrapper', 'SelfTrainingLoop',
                     'Shared4Conv1FCExtraNormBBoxHead'):
        assert expected in names, expected


def test_no_name_collides_with_openmmlab():
    """A same-named module in mmdet itself would have raised at import; here
    we also check the parent registries (mmengine, mmcv), where a clash
    would silently shadow their module inside the mmdet scope."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    clashes = []
    for rname, r in REGISTRIES.items():
        parent = r.parent
        while parent is not None:
            for name in _ours(r):
                if name in parent.module_dict:
                    clashes.append((rname, name, parent.scope))
            parent = parent.parent
        for name, cls in r.module_dict.items():
            if cls.__module__.startswith('mmselfdet'):
                assert r.get(name) is cls
    assert clashes == []


def test_import_registers_in_a_fresh_process():
    code = ('import mmselfdet; from mmdet.registry import MODELS, DATASETS; '
            'assert MODELS.get("MoCoV2") is not None; '
            'assert DATASETS.get("UnlabeledDataset") is not None')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_version_mismatch_warns_not_raises(monkeypatch):
    import mmdet
    monkeypatch.setattr(mmdet, '__version__', '9.9.9')
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter('always')
        mmselfdet._check_versions()
    assert any('mmdet' in str(w.message) for w in rec)
    assert importlib.import_module('mmselfdet.version').__version__
