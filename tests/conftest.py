# Copyright (c) mmselfdet contributors. All rights reserved.
import os
import os.path as osp

import pytest

import mmselfdet  # noqa: F401  (registers everything)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session', autouse=True)
def _mmdet_scope():
    from mmengine.registry import DefaultScope, init_default_scope
    if DefaultScope.get_current_instance() is None:
        init_default_scope('mmdet')
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    yield


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory) -> str:
    """A small toy dataset shared by the tests (generated once)."""
    from mmselfdet.datasets.toy import generate_toy_dataset
    root = str(tmp_path_factory.mktemp('toy'))
    generate_toy_dataset(root, seed=0, img_size=96, num_unlabeled=48,
                         num_train=16, num_val=8, progress=False)
    return root
