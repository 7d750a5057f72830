# Copyright (c) mmselfdet contributors. All rights reserved.
"""Saving, loading and resuming real Runner checkpoints under torch's
``weights_only=True`` default."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..utils import tiny_moco_config, write_random_images


def _runner(cfg_path, **overrides):
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def test_resume_restores_iter_queue_and_momentum_encoder(tmp_path):
    img_dir = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg_path = tiny_moco_config(img_dir, str(tmp_path / 'work'), max_iters=3)
    runner = _runner(cfg_path)
    runner.train()
    model = runner.model
    ckpt = osp.join(str(tmp_path / 'work'), 'iter_3.pth')
    assert osp.isfile(ckpt)
    saved_queue = model.queue.buffer.clone()
    saved_ptr = model.queue.ptr.clone()
    saved_key = model.momentum_encoder.module[0].conv1.weight.detach().clone()
    assert int(saved_ptr[0]) == 12  # 3 iters x 4 keys
    assert int(model.momentum_encoder.steps) == 3

    # a plain torch.load with the weights_only default works
    state = torch.load(ckpt, map_location='cpu')
    assert 'message_hub' in state and 'state_dict' in state

    runner2 = _runner(cfg_path, resume=True, load_from=ckpt,
                      train_cfg=dict(type='IterBasedTrainLoop', max_iters=5),
                      experiment_name='resumed')
    runner2.load_or_resume()
    m2 = runner2.model
    assert runner2.iter == 3
    assert torch.equal(m2.queue.buffer, saved_queue)
    assert torch.equal(m2.queue.ptr, saved_ptr)
    assert torch.equal(m2.momentum_encoder.module[0].conv1.weight, saved_key)
    assert int(m2.momentum_encoder.steps) == 3
    runner2.train()
    assert runner2.iter == 5
    assert int(m2.queue.ptr[0]) == (12 + 8) % 16


def test_load_from_without_resume(tmp_path):
    img_dir = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg_path = tiny_moco_config(img_dir, str(tmp_path / 'work'), max_iters=2,
                                ckpt_interval=2)
    runner = _runner(cfg_path)
    runner.train()
    ckpt = osp.join(str(tmp_path / 'work'), 'iter_2.pth')
    w = runner.model.backbone.conv1.weight.detach().clone()
    runner2 = _runner(cfg_path, load_from=ckpt, experiment_name='loaded')
    runner2.load_or_resume()
    assert runner2.iter == 0
    assert torch.equal(runner2.model.backbone.conv1.weight, w)


def test_plain_torch_refuses_without_allow_list(tmp_path):
    """Proves the allow-list is what makes loading work: a process that does
    not import mmselfdet fails on the same checkpoint."""
    img_dir = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg_path = tiny_moco_config(img_dir, str(tmp_path / 'work'), max_iters=1,
                                ckpt_interval=1)
    _runner(cfg_path).train()
    ckpt = osp.join(str(tmp_path / 'work'), 'iter_1.pth')
    code = 'import torch, sys; torch.load(sys.argv[1], map_location="cpu")'
    bare = subprocess.run([sys.executable, '-c', code, ckpt],
                          capture_output=True, text=True)
    assert bare.returncode != 0
    assert 'weights_only' in bare.stderr or 'Unsupported global' in bare.stderr
    ok = subprocess.run(
        [sys.executable, '-c', 'import mmselfdet; ' + code, ckpt],
        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
