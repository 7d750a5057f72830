# Copyright (c) mmselfdet contributors. All rights reserved.
"""The user-facing tools, run as a user runs them (subprocesses)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ..utils import REPO, tiny_moco_config, write_random_images
from ..test_reliability.helpers import free_port


def _run(cmd, **kw):
    env = dict(os.environ, PYTHON=sys.executable,
               PATH=osp.dirname(sys.executable) + os.pathsep +
               os.environ.get('PATH', ''))
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env=env, **kw)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A 2-step MoCo run through tools/train.py; returns its work dir."""
    tmp = tmp_path_factory.mktemp('pre')
    img_dir = write_random_images(str(tmp / 'imgs'), n=8)
    cfg = tiny_moco_config(img_dir, str(tmp / 'work'), max_iters=2,
                           ckpt_interval=2)
    res = _run([sys.executable, 'tools/train.py', cfg])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return str(tmp / 'work'), cfg, img_dir


def test_train_py_writes_checkpoint(pretrained):
    work, _, _ = pretrained
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


def test_export_matches_mmdet_retinanet(pretrained, tmp_path):
    work, _, _ = pretrained
    out = str(tmp_path / 'exported.pth')
    res = _run([sys.executable, 'tools/export_checkpoint.py',
                osp.join(work, 'iter_2.pth'), out, '--downstream-config',
                'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py'])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exported = torch.load(out)['state_dict']
    # every exported tensor is an mmdet RetinaNet backbone key
    assert all(k.startswith('backbone.') for k in exported)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith('matched')]
    n = len(exported)
    assert line and line[0].startswith(f'matched {n}/{n} ')
    assert 'missing 0, unexpected 0, shape-mismatched 0' in res.stdout
    # nothing matches a wrong method: a loud failure
    bad = _run([sys.executable, 'tools/export_checkpoint.py',
                osp.join(work, 'iter_2.pth'), str(tmp_path / 'x.pth'),
                '--method', 'NoSuchMethod'])
    assert bad.returncode != 0 and 'NoSuchMethod' in bad.stderr


def test_unknown_method_in_config_is_named(tmp_path, pretrained):
    _, cfg, _ = pretrained
    res = _run([sys.executable, 'tools/train.py', cfg, '--cfg-options',
                'model.type=MoCoV9'])
    assert res.returncode != 0
    assert 'model.type="MoCoV9"' in res.stderr and 'MoCoV2' in res.stderr


def test_stock_mmdet_train_py_runs_our_config(tmp_path):
    import mmdet
    stock = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                     'train.py')
    assert osp.isfile(stock)
    img_dir = write_random_images(str(tmp_path / 'imgs'), n=8)
    cfg = tiny_moco_config(img_dir, str(tmp_path / 'work'), max_iters=2,
                           ckpt_interval=2)
    res = _run([sys.executable, stock, cfg])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert osp.isfile(str(tmp_path / 'work' / 'iter_2.pth'))


def test_dist_train_sh_two_cpu_processes(tmp_path):
    img_dir = write_random_images(str(tmp_path / 'imgs'), n=16)
    cfg = tiny_moco_config(img_dir, str(tmp_path / 'work'), max_iters=2,
                           ckpt_interval=2, batch_size=2, queue_len=32)
    env_port = str(free_port())  # a free port, not one derived from the pid
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2'], cwd=REPO,
        capture_output=True, text=True,
        env=dict(os.environ, PYTHON=sys.executable, PORT=env_port))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ckpt = torch.load(str(tmp_path / 'work' / 'iter_2.pth'))
    # 2 steps x 2 ranks x batch 2 keys went into the queue
    assert int(ckpt['state_dict']['queue.ptr'][0]) == 8
    logs = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' /
                         'scalars.json'))
    assert logs
    recs = [json.loads(ln) for ln in open(logs[0])]
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in recs
               if 'loss' in r)
