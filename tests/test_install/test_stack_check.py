# Copyright (c) mmselfdet contributors. All rights reserved.
"""What ``pip install mmselfdet`` pulls in, and what ``import mmselfdet``
says about the stack it finds (mmselfdet/version.py)."""
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from mmselfdet import version as V

from ..utils import REPO

STACK = {'torch', 'mmengine', 'mmcv', 'mmdet', 'onedl-mmengine',
         'onedl-mmcv', 'onedl-mmdetection'}


def _pyproject() -> dict:
    tomllib = pytest.importorskip('tomllib')
    with open(f'{REPO}/pyproject.toml', 'rb') as f:
        return tomllib.load(f)


def test_base_install_leaves_the_stack_alone():
    """The hard dependencies name no part of either stack (so installing
    into an existing mmdet environment never replaces torch / mmcv /
    mmengine / mmdet, nor one stack's files with the other's), nor
    setuptools (whose version an existing environment decides)."""
    deps = {Requirement(r).name for r in _pyproject()['project'][
        'dependencies']}
    assert deps == {'numpy', 'pycocotools', 'scikit-learn', 'scipy', 'tqdm'}


def test_each_stack_extra_is_complete_and_one_stack_only():
    extras = _pyproject()['project']['optional-dependencies']
    up = {Requirement(r).name: Requirement(r) for r in extras['upstream']}
    fork = {Requirement(r).name: Requirement(r) for r in extras['onedl']}
    assert set(up) == {'torch', 'mmengine', 'mmcv', 'mmdet', 'setuptools'}
    assert set(fork) == {'torch', 'onedl-mmengine', 'onedl-mmcv',
                         'onedl-mmdetection'}
    # the tested versions satisfy their extra; mmdet 3.3 refuses mmcv 2.2
    assert up['mmcv'].specifier.contains('2.1.0')
    assert not up['mmcv'].specifier.contains('2.2.0')
    assert up['mmdet'].specifier.contains('3.3.0')
    assert fork['onedl-mmengine'].specifier.contains('0.10.12')
    assert fork['onedl-mmdetection'].specifier.contains('3.5.1')
    # setuptools 81 still has pkg_resources, 82 removed it
    st = up['setuptools'].specifier
    assert st.contains('81.0.0') and st.contains('80.9.0')
    assert not st.contains('82.0.0')
    # the extras agree with the import-time tested ranges
    for dist, req in list(up.items()) + list(fork.items()):
        if dist in V.TESTED:
            assert req.specifier.contains(V.TESTED[dist][0]), dist


def _stack(**dists):
    """A fake :func:`detect_stack` result: ``name=(dist, version)``."""
    out = {}
    for name, (dist, ver) in dists.items():
        out[name] = dict(version=ver, dists={dist: ver} if dist else {})
    return out


UPSTREAM = dict(torch=('torch', '2.13.0+cpu'), mmengine=('mmengine', '0.10.7'),
                mmcv=('mmcv', '2.1.0'), mmdet=('mmdet', '3.3.0'))


def test_tested_stacks_give_no_warning(monkeypatch):
    monkeypatch.setattr(V, 'find_spec', lambda name: object())
    assert V.check_stack(_stack(**UPSTREAM)) == []
    assert V.stack_name(_stack(**UPSTREAM)) == 'upstream'
    fork = dict(UPSTREAM, mmengine=('onedl-mmengine', '0.10.12'),
                mmdet=('onedl-mmdetection', '3.5.1'))
    assert V.check_stack(_stack(**fork)) == []
    assert V.stack_name(_stack(**fork)) == 'onedl'
    half = dict(UPSTREAM, mmdet=('onedl-mmdetection', '3.5.1'))
    assert V.stack_name(_stack(**half)) == 'mixed'


@pytest.mark.parametrize('name,dist,ver,expect', [
    ('mmdet', 'mmdet', '3.2.0', '3.3.0 <= mmdet < 3.4.0, but mmdet==3.2.0'),
    ('mmcv', 'mmcv', '2.2.0', '2.0.0rc4 <= mmcv < 2.2.0, but mmcv==2.2.0'),
    ('mmengine', 'onedl-mmengine', '0.10.9',
     '0.10.12 <= onedl-mmengine < 0.11.0, but onedl-mmengine==0.10.9'),
    ('mmcv', 'onedl-mmcv', '2.3.6', 'not tested with onedl-mmcv==2.3.6'),
    ('torch', 'torch', '2.0.1', '2.1.0 <= torch < 3.0.0, but torch==2.0.1'),
])
def test_outside_the_tested_range_warns(monkeypatch, name, dist, ver, expect):
    monkeypatch.setattr(V, 'find_spec', lambda name: object())
    warns = V.check_stack(_stack(**dict(UPSTREAM, **{name: (dist, ver)})))
    assert len(warns) == 1 and expect in warns[0], warns


def test_both_distributions_of_one_import_name_warn(monkeypatch):
    monkeypatch.setattr(V, 'find_spec', lambda name: object())
    stack = _stack(**UPSTREAM)
    stack['mmengine']['dists']['onedl-mmengine'] = '0.10.12'
    warns = V.check_stack(stack)
    assert len(warns) == 1
    assert 'mmengine==0.10.7' in warns[0] and 'onedl-mmengine==0.10.12' in \
        warns[0] and 'overwrite' in warns[0]


def test_upstream_mmengine_without_pkg_resources_warns(monkeypatch):
    monkeypatch.setattr(V, 'find_spec',
                        lambda name: None if name == 'pkg_resources'
                        else object())
    warns = V.check_stack(_stack(**UPSTREAM))
    assert len(warns) == 1 and 'setuptools>=77,<82' in warns[0]
    # the fork's mmengine does not use pkg_resources
    fork = dict(UPSTREAM, mmengine=('onedl-mmengine', '0.10.12'))
    assert V.check_stack(_stack(**fork)) == []


def test_mmcv_without_compiled_ops_warns(monkeypatch):
    monkeypatch.setattr(V, 'find_spec', lambda name: object())
    stack = _stack(**UPSTREAM)
    stack['mmcv']['ops'] = False
    warns = V.check_stack(stack)
    assert len(warns) == 1 and 'no compiled ops' in warns[0]
    assert '--no-build-isolation' in warns[0]
    stack['mmcv']['ops'] = True
    assert V.check_stack(stack) == []


def test_version_comparison_is_numeric_not_textual():
    assert V._in_range('0.10.12', '0.10.7', '1.0.0')
    assert not V._in_range('0.9.1', '0.10.7', '1.0.0')
    assert V._in_range('2.13.0+cpu', '2.1.0', '3.0.0')
    assert not V._in_range('2.2.0rc1', '2.0.0rc4', '2.1.0')


def test_missing_stack_stops_the_import_with_the_install_hint():
    code = ("import sys; sys.modules['mmdet'] = None\n"
            "try:\n    import mmselfdet\n"
            "except ImportError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert 'mmselfdet needs mmdet' in out
    assert 'mmselfdet[upstream]' in out and 'mmselfdet[onedl]' in out


def test_stack_report_names_what_is_imported():
    import mmcv
    import mmdet
    import mmengine
    import torch
    report = V.stack_report()
    for mod in (torch, mmengine, mmcv, mmdet):
        assert f'{mod.__name__:9s}{mod.__version__}' in report, report
    assert 'mmcv ops compiled' in report
    assert f'stack: {V.stack_name(V.detect_stack())}' in report
