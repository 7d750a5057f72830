# Copyright (c) mmselfdet contributors. All rights reserved.
"""Installing mmselfdet into an existing mmdet 3.x environment (a cluster
with its own torch / mmcv build) changes none of its packages, and the
installed package trains.

Opt-in (it creates a virtual environment and installs torch, mmcv from the
wheel cache, mmengine and mmdet: minutes): ``MMSELFDET_TEST_INSTALL=1``.
Last recorded run: docs/compatibility.md."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from ..utils import REPO, tiny_moco_config, write_random_images

pytestmark = pytest.mark.skipif(
    os.environ.get('MMSELFDET_TEST_INSTALL') != '1',
    reason='opt-in: MMSELFDET_TEST_INSTALL=1 (creates a venv, minutes)')

STACK = {'torch', 'mmcv', 'mmengine', 'mmdet', 'onedl-mmengine',
         'onedl-mmcv', 'onedl-mmdetection', 'setuptools'}

TOY_STEP = '''
import json, sys
from mmengine.config import Config
from mmengine.runner import Runner
import mmselfdet
runner = Runner.from_cfg(Config.fromfile(sys.argv[1]))
runner.train()
json.dump(dict(file=mmselfdet.__file__, iter=runner.iter,
               ptr=int(runner.model.queue.ptr[0])), open(sys.argv[2], 'w'))
'''


def _run(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=1800, **kw)
    assert res.returncode == 0, ' '.join(map(str, cmd)) + '\n' + \
        res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _packages(py) -> dict:
    res = _run([py, '-m', 'pip', 'list', '--format=json',
                '--disable-pip-version-check'])
    return {p['name'].lower(): p['version'] for p in json.loads(res.stdout)}


def _wheelhouse() -> str:
    tag = 'cp%d%d' % sys.version_info[:2]
    for d in (os.environ.get('MMSELFDET_WHEELHOUSE'),
              osp.join(REPO, '..', 'shared', 'wheels', f'cpu-{tag}')):
        if d and glob.glob(osp.join(d, f'mmcv-2.1.0-{tag}-*.whl')):
            return d
    pytest.skip(f'no mmcv 2.1.0 {tag} wheel in a cache (a build takes '
                '~15 min)')


def test_wheel_into_an_existing_mmdet_environment(tmp_path):
    import torch
    wheels = _wheelhouse()
    venv = tmp_path / 'venv'
    py = venv / 'bin' / 'python'
    _run([sys.executable, '-m', 'venv', venv])
    pip = [py, '-m', 'pip', 'install', '-q', '--disable-pip-version-check']
    # 1. the environment a user already has: torch, mmcv with ops, mmengine,
    #    mmdet 3.3 (and setuptools<82 for mmengine's `mmdet::` bases)
    _run(pip + [f'torch=={torch.__version__}', 'setuptools>=77,<82'])
    _run(pip + ['--find-links', wheels, 'mmcv==2.1.0', 'mmengine==0.10.7',
                'mmdet==3.3.0'])
    before = _packages(py)

    # 2. the project as a user installs it: a wheel built from the checkout
    src = tmp_path / 'src'
    shutil.copytree(osp.join(REPO, 'mmselfdet'), src / 'mmselfdet',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for f in ('pyproject.toml', 'setup.cfg', 'README.md', 'LICENSE'):
        shutil.copy(osp.join(REPO, f), src / f)
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
          '--no-build-isolation', '-w', tmp_path / 'dist', src])
    wheel, = glob.glob(str(tmp_path / 'dist' / 'mmselfdet-*.whl'))
    _run(pip + [wheel])
    after = _packages(py)
    changed = {n: (v, after.get(n)) for n, v in before.items()
               if after.get(n) != v}
    assert not changed, changed  # nothing of the environment replaced
    added = set(after) - set(before)
    assert 'mmselfdet' in added and not added & STACK, added

    # 3. the check command names the stack; no warning on a tested one
    report = _run([py, '-c', 'import mmselfdet; '
                   'print(mmselfdet.version.stack_report())'],
                  cwd=tmp_path).stdout
    assert 'stack: upstream' in report and 'tested stack: yes' in report, \
        report

    # 4. one toy MoCo step with the installed package (not the checkout)
    imgs = write_random_images(str(tmp_path / 'imgs'), n=4)
    cfg = tiny_moco_config(imgs, str(tmp_path / 'work'), max_iters=1,
                           batch_size=4, ckpt_interval=1)
    out = tmp_path / 'step.json'
    _run([py, '-c', TOY_STEP, cfg, out], cwd=tmp_path,
         env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=''))
    res = json.loads(out.read_text())
    assert res['file'].startswith(str(venv)), res
    assert res['iter'] == 1 and res['ptr'] == 4  # 4 keys enqueued
