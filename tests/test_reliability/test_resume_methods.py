# Copyright (c) mmselfdet contributors. All rights reserved.
"""Resume restores every method's state: a toy config trained 2 steps with
a resume after step 1 ends with exactly the weights and buffers (queues,
pointers, momentum encoders, EMA step counters) of an uninterrupted run."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..utils import REPO

CONFIGS = ['detco/detco_r18_1xb32-60it_toy.py',
           'byol/byol_r18_1xb32-110it_toy.py',
           'insloc/insloc_r18_fpn_1xb32-150it_toy.py']


def _cfg(path, toy_root, work, **extra):
    cfg = Config.fromfile(osp.join(REPO, 'configs', path))
    ds = cfg.train_dataloader.dataset
    if ds.type == 'MultiImageMixDataset':
        ds = ds.dataset
    ds.data_root = toy_root + '/'
    cfg.train_dataloader.update(batch_size=4, num_workers=1,
                                persistent_workers=False)
    cfg.train_cfg.max_iters = 2
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=2)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work
    cfg.merge_from_dict(extra)
    return cfg


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.basename(c) for c in CONFIGS])
def test_resume_after_step_1_equals_two_steps(path, toy_root, tmp_path):
    ref = Runner.from_cfg(_cfg(path, toy_root, str(tmp_path / 'ref')))
    ref.train()
    stop = Runner.from_cfg(_cfg(path, toy_root, str(tmp_path / 'stop'),
                                train_cfg=dict(max_iters=1)))
    stop.train()
    resumed = Runner.from_cfg(_cfg(path, toy_root, str(tmp_path / 'stop'),
                                   resume=True))
    resumed.train()
    assert resumed.iter == 2
    # the resumed run trained step 2 only (not both steps from scratch)
    log = osp.join(resumed.log_dir, 'vis_data', 'scalars.json')
    with open(log) as f:
        assert [json.loads(ln)['iter'] for ln in f] == [2]
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert any('queue' in k or 'momentum' in k or 'target' in k
               for k in a), 'no queue / momentum encoder in the state?'
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
