# Copyright (c) mmselfdet contributors. All rights reserved.
"""Every config parses; every pretraining config builds its model and its
dataset pipeline (transforms exist, arguments are valid)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmselfdet.registry import MODELS, TRANSFORMS
from .utils import REPO

CONFIGS = sorted(c for c in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
                 if '/_base_/' not in c)
PRETRAIN = [c for c in CONFIGS if '/benchmarks/' not in c]


def test_configs_found():
    assert len(PRETRAIN) >= 10


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(c, REPO) for c in CONFIGS])
def test_config_parses_and_imports_mmselfdet(path):
    cfg = Config.fromfile(path)
    assert 'mmselfdet' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmdet'


def _transforms(pipeline):
    for t in pipeline:
        yield t
        for key in ('pipelines', ):
            for sub in (t.get(key) or {}).values():
                yield from _transforms(sub)
        for name, sub in t.items():
            if isinstance(sub, list) and sub and isinstance(sub[0], dict) \
                    and 'type' in sub[0]:
                yield from _transforms(sub)


@pytest.mark.parametrize('path', PRETRAIN,
                         ids=[osp.relpath(c, REPO) for c in PRETRAIN])
def test_pretrain_config_builds(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    assert hasattr(model, 'loss')
    ds = cfg.train_dataloader.dataset
    pipelines = [ds.get('pipeline', [])]
    if 'dataset' in ds:  # wrappers such as MultiImageMixDataset
        pipelines.append(ds.dataset.get('pipeline', []))
    for pipeline in pipelines:
        for t in _transforms(pipeline):
            TRANSFORMS.build(t)


# every pretraining config is guarded; downstream detector configs (the
# benchmarks and SimDETR's fine-tuning configs `*-ft.py` / `*-5cls.py`)
# keep stock mmdet's wrappers
GUARDS = ('NonFiniteGuardOptimWrapper', 'NonFiniteGuardAmpOptimWrapper')
GUARDED = [c for c in PRETRAIN if not c.endswith(('-ft.py', '-5cls.py'))]


@pytest.mark.parametrize('path', GUARDED,
                         ids=[osp.relpath(c, REPO) for c in GUARDED])
def test_pretrain_config_guards_against_non_finite_losses(path):
    """A NaN step is stopped (or skipped) by the optimizer wrapper, not
    applied: every pretraining config, paper or toy, names a guard."""
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.type in GUARDS, (path, cfg.optim_wrapper.type)
