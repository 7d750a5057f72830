# Copyright (c) mmselfdet contributors. All rights reserved.
"""mmselfdet: self-supervised detection pretraining for MMDetection 3.x.

``import mmselfdet`` registers every dataset, transform, model and hook of
the project into mmdet's registries (``mmdet.registry``), so configs only
need ``custom_imports=dict(imports=['mmselfdet'])`` and
``default_scope='mmdet'``.
"""
import warnings

from . import version
from .version import __version__, version_info


def _check_stack() -> None:
    """Stop with an explanation when torch / mmengine / mmcv / mmdet is
    missing; warn (never fail) outside the tested versions
    (:mod:`mmselfdet.version`)."""
    missing = version.missing_packages()
    if missing:
        raise ImportError(f'mmselfdet needs {", ".join(missing)}, which '
                          f'cannot be imported. {version.INSTALL_HINT}')
    for msg in version.check_stack(version.detect_stack()):
        warnings.warn(msg, stacklevel=3)


_check_versions = _check_stack  # the former name
_check_stack()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               simdetr, structures,  # importing registers every module
               visualization)

__all__ = ['__version__', 'version_info', 'datasets', 'engine', 'evaluation',
           'models', 'simdetr', 'structures']
