# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/utils/paths.py
"""The wheel stands without the checkout: built from a copy of the
repository, installed into a fresh virtual environment, used from a folder
outside any checkout, it finds its configs and tools, resolves a
``_base_ = 'mmselfdet::...'`` config and trains one toy step.

Opt-in (builds a wheel, creates a venv: about a minute):
``MMSELFDET_TEST_INSTALL=1``. The venv reuses this environment's installed
stack (torch, mmcv, mmengine, mmdet) through a path entry instead of
installing it again (``test_existing_env.py`` does the full install); the
editable install of the checkout is not visible there (a path entry does
not run ``.pth`` files), and the test checks that mmselfdet is imported
from the venv."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

import pytest

from ..utils import REPO, tiny_moco_config, write_random_images

pytestmark = pytest.mark.skipif(
    os.environ.get('MMSELFDET_TEST_INSTALL') != '1',
    reason='opt-in: MMSELFDET_TEST_INSTALL=1 (builds a wheel, creates a '
    'venv)')

TOY = 'mocov2/mocov2_r18_1xb32-180it_toy.py'

STEP = '''
import json, os.path as osp, sys
import mmselfdet  # registers the mmselfdet:: config scope
from mmengine.config import Config
from mmengine.runner import Runner
from mmselfdet.utils import paths
from mmselfdet.methods import DEFAULT_DOWNSTREAM
cfg = Config.fromfile(sys.argv[1])
runner = Runner.from_cfg(cfg)
runner.train()
json.dump(dict(
    file=mmselfdet.__file__, root=paths.project_root(), iter=runner.iter,
    ptr=int(runner.model.queue.ptr[0]),
    wrapper=type(runner.optim_wrapper).__name__,
    train=osp.isfile(paths.project_path('tools/train.py')),
    downstream=[osp.isfile(paths.project_path(p))
                for p in DEFAULT_DOWNSTREAM.values()]),
    open(sys.argv[2], 'w'))
'''


def _run(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=900, **kw)
    assert res.returncode == 0, ' '.join(map(str, cmd)) + '\n' + \
        res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _clone(dst) -> None:
    """What a clone holds for a build: the package (``.mim`` symlinks kept
    as symlinks), the folders they point to and the packaging files."""
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
    shutil.copytree(osp.join(REPO, 'mmselfdet'), dst / 'mmselfdet',
                    symlinks=True, ignore=ignore)
    for d in ('configs', 'tools'):
        shutil.copytree(osp.join(REPO, d), dst / d, ignore=ignore)
    for f in ('pyproject.toml', 'setup.cfg', 'README.md', 'LICENSE'):
        shutil.copy(osp.join(REPO, f), dst / f)


def test_wheel_outside_the_checkout(tmp_path):
    src = tmp_path / 'src'
    _clone(src)
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
          '--no-build-isolation', '--disable-pip-version-check', '-w',
          tmp_path / 'dist', src])
    wheel, = glob.glob(str(tmp_path / 'dist' / 'mmselfdet-*.whl'))
    shutil.rmtree(src)  # nothing of the source is left to fall back on

    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', venv])
    py = venv / 'bin' / 'python'
    site = _run([py, '-c', 'import sysconfig; '
                 'print(sysconfig.get_paths()["purelib"])']).stdout.strip()
    with open(osp.join(site, '_stack.pth'), 'w') as f:  # the installed stack
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    _run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index',
          '--disable-pip-version-check', wheel])

    work = tmp_path / 'user'  # a folder outside any checkout
    imgs = write_random_images(str(work / 'imgs'), n=4)
    cfg = tiny_moco_config(imgs, str(work / 'run'), max_iters=1,
                           batch_size=4, ckpt_interval=1)
    with open(cfg) as f:
        text = f.read()
    head = f'_base_ = [{osp.join(REPO, "configs", TOY)!r}]'
    assert head in text
    with open(cfg, 'w') as f:
        f.write(text.replace(head, f"_base_ = 'mmselfdet::{TOY}'"))

    out = work / 'step.json'
    _run([py, '-c', STEP, cfg, out], cwd=work,
         env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=''))
    res = json.loads(out.read_text())
    pkg = osp.join(site, 'mmselfdet')
    assert res['file'] == osp.join(pkg, '__init__.py'), res
    assert res['root'] == osp.join(pkg, '.mim'), res  # shipped copies
    assert res['iter'] == 1 and res['ptr'] == 4  # one step, 4 keys queued
    assert res['wrapper'] == 'NonFiniteGuardOptimWrapper'  # from the base
    assert res['train'] and all(res['downstream']), res
    assert not osp.islink(osp.join(pkg, '.mim', 'configs'))
    assert osp.isfile(osp.join(pkg, '.mim', 'configs', TOY))
