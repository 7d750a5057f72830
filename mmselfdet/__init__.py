# Copyright (c) mmselfdet contributors. All rights reserved.
"""mmselfdet: self-supervised detection pretraining for MMDetection 3.x.

``import mmselfdet`` registers every dataset, transform, model and hook of
the project into mmdet's registries (``mmdet.registry``), so configs only
need ``custom_imports=dict(imports=['mmselfdet'])`` and
``default_scope='mmdet'``.
"""
import warnings

from .version import __version__, version_info

_SUPPORTED = {
    # package: (min inclusive, max exclusive)
    'mmengine': ('0.10.7', '1.0.0'),
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmdet': ('3.3.0', '3.4.0'),
}


def _check_versions() -> None:
    """Warn (never fail) when a dependency is outside the tested range."""
    from mmengine.utils import digit_version

    import mmcv
    import mmdet
    import mmengine
    found = {'mmengine': mmengine.__version__, 'mmcv': mmcv.__version__,
             'mmdet': mmdet.__version__}
    for name, (lo, hi) in _SUPPORTED.items():
        ver = found[name]
        if not digit_version(lo) <= digit_version(ver) < digit_version(hi):
            warnings.warn(
                f'mmselfdet {__version__} is tested with {lo} <= {name} < '
                f'{hi}, but {name}=={ver} is installed; things may break.')


_check_versions()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               structures)  # importing registers every module

__all__ = ['__version__', 'version_info', 'datasets', 'engine', 'evaluation',
           'models', 'structures']
