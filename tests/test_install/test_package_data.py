# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/utils/paths.py
# covers: mmselfdet/registry.py
"""The wheel carries configs/ and tools/ inside the package (mmdet's
``.mim`` layout), the paths helper finds them, and ``mmselfdet::`` config
bases resolve and build. Fast: the wheel's file list comes from setuptools'
own package-data resolution, without building (the wheel itself is built in
the opt-in ``test_wheel_outside_checkout.py``)."""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmselfdet.utils import paths
from ..utils import REPO

TOY = 'mocov2/mocov2_r18_1xb32-180it_toy.py'


def _project_files(folder):
    """Every file below ``REPO/folder`` (no caches), relative to REPO."""
    out = set()
    for d, dirs, files in os.walk(osp.join(REPO, folder)):
        dirs[:] = [x for x in dirs if x != '__pycache__']
        out |= {osp.relpath(osp.join(d, f), REPO) for f in files
                if not f.endswith('.pyc')}
    return out


def test_wheel_file_list_has_every_config_and_tool(monkeypatch):
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution
    monkeypatch.chdir(REPO)
    dist = apply_configuration(Distribution(), 'pyproject.toml')
    dist.include_package_data = False  # package_data alone (no egg-info)
    build_py = dist.get_command_obj('build_py')
    build_py.ensure_finalized()
    shipped = {osp.relpath(osp.join(src, f), osp.join('mmselfdet', '.mim'))
               for pkg, src, _, files in build_py.data_files
               if pkg == 'mmselfdet' for f in files}
    configs, tools = _project_files('configs'), _project_files('tools')
    assert len(configs) > 100 and 'tools/train.py' in tools
    assert configs - shipped == set()
    assert tools - shipped == set()
    assert shipped - configs - tools == {'model-index.yml'}  # for mmengine
    assert 'mmselfdet.utils' in dist.packages  # paths.py travels too


def test_mim_folders_point_at_the_project_folders():
    for name in ('configs', 'tools'):
        link = osp.join(REPO, 'mmselfdet', '.mim', name)
        assert osp.islink(link), f'{link} must be a symlink to ../../{name}'
        assert osp.samefile(link, osp.join(REPO, name))


def test_paths_in_a_checkout_and_without_one(tmp_path, monkeypatch):
    assert paths.project_root() == REPO
    assert paths.config_dir() == osp.join(REPO, 'configs')
    assert paths.project_path('tools/train.py') == osp.join(
        REPO, 'tools', 'train.py')
    with pytest.raises(FileNotFoundError, match='configs/nope.py'):
        paths.project_path('configs/nope.py')
    # an installed wheel: site-packages/mmselfdet/.mim/{configs,tools}
    pkg = tmp_path / 'site-packages' / 'mmselfdet'
    (pkg / '.mim' / 'configs' / 'mocov2').mkdir(parents=True)
    (pkg / '.mim' / 'configs' / TOY).write_text('x = 1\n')
    (pkg / '.mim' / 'tools').mkdir()
    monkeypatch.setattr(paths, '_PACKAGE_DIR', str(pkg))
    mim = str(pkg / '.mim')
    assert paths.project_root() == mim
    assert paths.project_path('configs/' + TOY) == osp.join(
        mim, 'configs', TOY)
    (pkg / '.mim' / 'configs' / TOY).unlink()
    (pkg / '.mim' / 'configs' / 'mocov2').rmdir()
    (pkg / '.mim' / 'configs').rmdir()
    with pytest.raises(FileNotFoundError, match='no configs/ folder'):
        paths.project_root()


def test_mmselfdet_base_resolves_and_builds(tmp_path, monkeypatch):
    """What mmengine does for an installed wheel: ``get_installed_path``
    gives ``site-packages/mmselfdet``, whose ``.mim/configs`` holds the
    base. (An editable install has no such folder: mmengine 0.10.7 then
    points at a missing ``site-packages/mmselfdet``.)"""
    import mmengine.config.config as mmcfg
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import FUNCTIONS, MODELS, OPTIM_WRAPPERS
    pkg = osp.join(REPO, 'mmselfdet')
    monkeypatch.setattr(mmcfg, 'get_installed_path', lambda name: pkg)
    cfg_file = tmp_path / 'user.py'
    cfg_file.write_text(f"_base_ = 'mmselfdet::{TOY}'\n"
                        'model = dict(queue_len=64)\n')
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.queue_len == 64 and cfg.model.type == 'MoCoV2'
    assert cfg.optim_wrapper.type == 'NonFiniteGuardOptimWrapper'
    # mmengine tags the base's typed dicts with the scope ...
    assert cfg.model._scope_ == 'mmselfdet'
    # ... which builds through mmdet's registries (our modules) and
    # mmengine's (its own), not only in the mmdet scope
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'MoCoV2' and model.queue.length == 64
    wrapper = OPTIM_WRAPPERS.build(dict(  # OptimWrapper: mmengine's only
        type='OptimWrapper', _scope_='mmselfdet',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert type(wrapper) is OptimWrapper
    with FUNCTIONS.switch_scope_and_registry('mmselfdet') as reg:  # no mmdet
        assert reg.scope == 'mmselfdet'
        assert reg.get('pseudo_collate') is pseudo_collate
    assert sorted(glob.glob(osp.join(pkg, '.mim', 'configs', 'mocov2',
                                     '*.py')))
