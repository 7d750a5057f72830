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


# Imported by every rank (custom_imports): at interpreter exit, after the
# tool's own teardown, it records what is still alive in this process.
EXIT_PROBE = '''
import atexit, json, multiprocessing, os, threading


def _record():
    tasks = sorted(os.listdir('/proc/self/task'))
    native = [open(f'/proc/self/task/{t}/comm').read().strip() for t in tasks]
    out = dict(native=native,
               python=[t.name for t in threading.enumerate()],
               children=[p.pid for p in multiprocessing.active_children()])
    path = os.path.join(os.environ['EXIT_PROBE_DIR'],
                        'rank%s.json' % os.environ['RANK'])
    with open(path, 'w') as f:
        json.dump(out, f)


atexit.register(_record)
'''


def test_finished_run_exits_with_no_live_gloo_threads(tmp_path):
    """A finished 2-process run tears down before the interpreter does: at
    exit neither rank has a gloo thread (the process group really was
    destroyed, not only unregistered), a Python thread or a data loader
    worker left, and both exit 0 without 'terminate called' (a gloo thread
    that outlives the interpreter can SIGABRT a rank after a finished run)."""
    import json
    import os
    import os.path as osp
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    probe_dir = tmp_path / 'probe'
    probe_dir.mkdir()
    (probe_dir / 'exit_probe.py').write_text(EXIT_PROBE)
    # 1 persistent data loader worker per rank: it must be gone too
    cfg = reliability_config(
        imgs, str(tmp_path / 'work'), max_iters=2, ckpt_interval=2,
        num_workers=1, extra="custom_imports = dict(imports=['mmselfdet', "
        "'exit_probe'], allow_failed_imports=False)\n")
    run_env = env()
    run_env.update(PORT=str(free_port()), EXIT_PROBE_DIR=str(probe_dir),
                   PYTHONPATH=str(probe_dir) + os.pathsep +
                   run_env['PYTHONPATH'])
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--cfg-options',
         'train_dataloader.batch_size=2'],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=run_env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'terminate called' not in out
    assert osp.isfile(str(tmp_path / 'work' / 'iter_2.pth'))
    for rank in (0, 1):
        with open(probe_dir / f'rank{rank}.json') as f:
            alive = json.load(f)
        gloo = [n for n in alive['native'] if 'gloo' in n]
        assert gloo == [], (rank, alive)
        assert alive['python'] == ['MainThread'], (rank, alive)
        assert alive['children'] == [], (rank, alive)
