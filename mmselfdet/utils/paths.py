# Copyright (c) mmselfdet contributors. All rights reserved.
"""Where the project's ``configs/`` and ``tools/`` are, in a checkout and in
an installed wheel alike (standard library only).

A wheel ships them inside the package as ``mmselfdet/.mim/configs`` and
``mmselfdet/.mim/tools``, as mmdet does (``mmdet/.mim``); in the repository
those two are symlinks to the top-level folders, which is how the wheel
build finds them (``[tool.setuptools.package-data]`` in ``pyproject.toml``).
With the folders inside the package, mmengine resolves
``_base_ = 'mmselfdet::mocov2/mocov2_r18_1xb32-180it_toy.py'`` once
:func:`register_config_scope` has run (``import mmselfdet`` runs it).
"""
import os.path as osp
from typing import Optional

PACKAGE = 'mmselfdet'
#: ``package::`` prefix of config bases (``mmselfdet::mocov2/...``)
CONFIG_SCOPE = 'mmselfdet'

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def project_root() -> str:
    """The folder that holds ``configs/`` and ``tools/``.

    The checkout root when the package is imported from a repository
    (``pyproject.toml``, ``configs/`` and ``tools/`` beside ``mmselfdet/``);
    else the copies shipped in the package, ``mmselfdet/.mim``.

    Returns:
        str: An absolute path; ``configs/`` and ``tools/`` are below it.

    Raises:
        FileNotFoundError: Neither place has ``configs/`` (an install from
            a wheel built without them), naming both places looked at.
    """
    checkout = osp.dirname(_PACKAGE_DIR)
    if all(osp.exists(osp.join(checkout, p))
           for p in ('pyproject.toml', 'configs', 'tools')):
        return checkout
    mim = osp.join(_PACKAGE_DIR, '.mim')
    if osp.isdir(osp.join(mim, 'configs')):
        return mim
    raise FileNotFoundError(
        f'mmselfdet: no configs/ folder, neither in a checkout ({checkout}) '
        f'nor shipped in the package ({mim}); reinstall mmselfdet from a '
        'wheel or a clone')


def config_dir() -> str:
    """The ``configs/`` folder (see :func:`project_root`)."""
    return osp.join(project_root(), 'configs')


def tools_dir() -> str:
    """The ``tools/`` folder (see :func:`project_root`)."""
    return osp.join(project_root(), 'tools')


def project_path(rel_path: str, must_exist: bool = True) -> str:
    """Absolute path of a project file named relative to the repository
    root, such as ``'configs/mocov2/mocov2_r18_1xb32-180it_toy.py'`` or
    ``'tools/train.py'``, in a checkout or an installed wheel.

    Args:
        rel_path (str): A path below ``configs/`` or ``tools/``, relative
            to the repository root. Absolute paths are returned unchanged.
        must_exist (bool): Raise when the file is missing. Defaults to True.

    Returns:
        str: The absolute path.

    Raises:
        FileNotFoundError: ``must_exist`` and the file is missing.
    """
    if osp.isabs(rel_path):
        path = rel_path
    else:
        path = osp.join(project_root(), osp.normpath(rel_path))
    if must_exist and not osp.exists(path):
        raise FileNotFoundError(f'mmselfdet: {rel_path} not found (looked '
                                f'for {path})')
    return path


def register_config_scope(scope: Optional[str] = None) -> None:
    """Let mmengine resolve ``mmselfdet::`` config bases.

    mmengine 0.10.7 resolves ``package::path`` only for the packages in
    ``mmengine.config.utils.MODULE2PACKAGE`` (OpenMMLab's own; other names
    fail with "mmengine does not support to load ... config", mmengine
    issue #1410); the entry added here is its documented meaning, module
    name -> pip package name. mmengine then reads the base from
    ``<installed package>/.mim/configs/``. Idempotent.

    Args:
        scope (str, optional): The prefix. Defaults to :data:`CONFIG_SCOPE`.
    """
    try:
        from mmengine.config.utils import MODULE2PACKAGE
    except ImportError:  # an mmengine without the table resolves by itself
        return
    MODULE2PACKAGE.setdefault(scope or CONFIG_SCOPE, PACKAGE)
