# Copyright (c) mmselfdet contributors. All rights reserved.
"""The package version and the check of the OpenMMLab stack it runs on.

mmselfdet runs on two stacks that share the import names ``mmengine``,
``mmcv`` and ``mmdet`` but are published under different distribution
names: the upstream OpenMMLab releases (``mmengine``, ``mmcv``, ``mmdet``)
and the OneDL fork (``onedl-mmengine``, ``onedl-mmcv``,
``onedl-mmdetection``). Neither is a hard dependency of the package (so
``pip install mmselfdet`` never replaces the stack of an existing
environment); ``import mmselfdet`` checks what is there instead:
a missing package stops the import with an explanation, a version outside
the tested range gives a warning.

``python -c "import mmselfdet; print(mmselfdet.version.stack_report())"``
prints the stack found and the warnings.
"""
import sys
from importlib import metadata
from importlib.util import find_spec
from typing import Dict, List, Optional, Tuple

__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string such as ``'0.1.0rc1'`` into a tuple."""
    parts = []
    for x in version_str.split('.'):
        if x.isdigit():
            parts.append(int(x))
        else:
            parts.append(x)
    return tuple(parts)


version_info = parse_version_info(__version__)

#: import name -> the distributions that provide it (the fork's first)
PROVIDERS: Dict[str, Tuple[str, ...]] = {
    'torch': ('torch', ),
    'mmengine': ('onedl-mmengine', 'mmengine'),
    'mmcv': ('onedl-mmcv', 'mmcv', 'mmcv-full', 'mmcv-lite'),
    'mmdet': ('onedl-mmdetection', 'mmdet'),
}

#: distribution -> tested range (min inclusive, max exclusive); a
#: distribution missing here is untested
TESTED: Dict[str, Tuple[str, str]] = {
    'torch': ('2.1.0', '3.0.0'),
    'mmengine': ('0.10.7', '1.0.0'),
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmdet': ('3.3.0', '3.4.0'),
    'onedl-mmengine': ('0.10.12', '0.11.0'),
    'onedl-mmdetection': ('3.5.1', '3.6.0'),
}

INSTALL_HINT = (
    'mmselfdet does not install the OpenMMLab stack itself (so that it never '
    'replaces the one of an existing environment). Install one of: '
    '`pip install "mmselfdet[upstream]"` (torch, mmengine, mmcv<2.2, mmdet '
    '3.3), `pip install "mmselfdet[onedl]"` (the OneDL fork), or run '
    '`bash tools/setup_env.sh` in a source checkout. See "Install into an '
    'existing mmdet 3.x environment" in README.md.')


def _dist_version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _key(version: str) -> tuple:
    """A comparable key of a version string (``packaging`` when present)."""
    try:
        from packaging.version import Version
        return (Version(version.split('+')[0]), )
    except Exception:  # no packaging, or an odd string: digits only
        nums = []
        for part in version.split('+')[0].split('.'):
            digits = ''.join(c for c in part if c.isdigit())
            nums.append(int(digits) if digits else 0)
        return tuple(nums)


def _in_range(version: str, lo: str, hi: str) -> bool:
    return _key(lo) <= _key(version) < _key(hi)


def missing_packages() -> List[str]:
    """Import names of the stack that cannot be imported at all."""
    return [name for name in PROVIDERS if find_spec(name) is None]


def detect_stack() -> Dict[str, dict]:
    """What provides each import name of the stack.

    Returns:
        dict: import name -> ``dict(version=<module __version__ or None>,
        dists={distribution: version} for the installed providers)``.
        Modules are imported only if they are installed.
    """
    import importlib
    out = {}
    for name, dists in PROVIDERS.items():
        installed = {d: v for d in dists if (v := _dist_version(d))}
        version = None
        if find_spec(name) is not None:
            version = getattr(importlib.import_module(name), '__version__',
                              None)
        out[name] = dict(version=version, dists=installed)
        if name == 'mmcv' and version is not None:
            out[name]['ops'] = find_spec('mmcv._ext') is not None
    return out


def stack_name(stack: Dict[str, dict]) -> str:
    """``'upstream'``, ``'onedl'`` (mmengine and mmdet from the OneDL fork,
    mmcv from either) or ``'mixed'``, per distribution names."""
    forks = {n for n, s in stack.items()
             if any(d.startswith('onedl-') for d in s['dists'])}
    if not forks:
        return 'upstream'
    return 'onedl' if {'mmengine', 'mmdet'} <= forks else 'mixed'


def check_stack(stack: Dict[str, dict]) -> List[str]:
    """Warnings for ``stack`` (see :func:`detect_stack`): versions outside
    the tested range, untested distributions, two distributions that
    overwrite each other's files, and a missing ``pkg_resources`` where
    upstream mmengine needs it. An empty list means a tested stack."""
    warns = []
    for name, info in stack.items():
        dists, version = info['dists'], info['version']
        if version is None:
            continue
        if info.get('ops') is False:
            warns.append(
                'mmcv has no compiled ops (no mmcv._ext: RoIAlign, nms, '
                'deformable attention are missing). mmcv is published as '
                'source; pip builds it without ops in an isolated build '
                'environment that has no torch: reinstall it with '
                '`MMCV_WITH_OPS=1 pip install --no-build-isolation` after '
                'torch, or from a prebuilt wheel')
        if len(dists) > 1:
            listed = ', '.join(f'{d}=={v}' for d, v in dists.items())
            warns.append(
                f'both {listed} are installed; they share the import name '
                f'{name!r} and overwrite each other\'s files: uninstall all '
                'of them and install one')
            continue
        dist = next(iter(dists), name)  # no metadata: a source checkout
        if dist not in TESTED:
            warns.append(f'mmselfdet {__version__} is not tested with '
                         f'{dist}=={version}; things may break.')
            continue
        lo, hi = TESTED[dist]
        if not _in_range(version, lo, hi):
            warns.append(
                f'mmselfdet {__version__} is tested with {lo} <= {dist} < '
                f'{hi}, but {dist}=={version} is installed; things may '
                'break.')
    upstream_engine = 'mmengine' in stack.get('mmengine', {}).get('dists', {})
    if upstream_engine and find_spec('pkg_resources') is None:
        warns.append(
            'mmengine resolves `mmdet::` config bases with pkg_resources, '
            'which setuptools >= 82 no longer has: configs with `mmdet::` '
            'bases will not load; pip install "setuptools>=77,<82"')
    return warns


def stack_report() -> str:
    """A few lines naming the stack found, and its warnings."""
    stack = detect_stack()
    lines = [f'mmselfdet {__version__}, python {sys.version.split()[0]}, '
             f'stack: {stack_name(stack)}']
    for name, info in stack.items():
        dists = ', '.join(f'{d}=={v}' for d, v in info['dists'].items())
        lines.append(f'  {name:9s}{info["version"] or "missing"}'
                     + (f'  ({dists})' if dists else ''))
    if 'ops' in stack['mmcv']:
        ops = 'compiled' if stack['mmcv']['ops'] else 'MISSING'
        lines.append(f'  mmcv ops {ops}')
    warns = check_stack(stack)
    lines += [f'  warning: {w}' for w in warns] or ['  tested stack: yes']
    return '\n'.join(lines)
