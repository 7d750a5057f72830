# Copyright (c) mmselfdet contributors. All rights reserved.
"""Distributed faults on 2 CPU processes (gloo, tools/dist_train.sh): a rank
that crashes or hangs ends the job with an error within a bounded time
instead of blocking it. (Every toy config training on 2 processes is
tests/test_tools/test_toy_methods.py.)"""
import subprocess
import time

import pytest

from ..utils import REPO, write_random_images
from .helpers import env, free_port, reliability_config


@pytest.mark.parametrize('action', ['raise', 'hang'])
def test_failing_rank_ends_the_job(tmp_path, action):
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg = reliability_config(
        imgs, str(tmp_path / 'work'), max_iters=6, ckpt_interval=6,
        extra=f"custom_hooks = [dict(type='TestFaultHook', action="
        f"'{action}', at_iter=2, rank=1)]\n")
    start = time.time()
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--cfg-options',
         'train_dataloader.batch_size=2', 'env_cfg.dist_cfg.timeout=15'],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(env(), PORT=str(free_port())))
    took = time.time() - start
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    if action == 'raise':
        assert 'injected crash on rank 1 at iteration 2' in out
    else:  # rank 0 times out in the gradient all-reduce after 15 s
        assert 'imed out' in out or 'Timeout' in out, out[-3000:]
    # start-up (~10-20 s here) + the 15 s collective timeout + teardown
    assert took < 120, took
    print(f'{action}: job exited with {res.returncode} after {took:.0f} s')
