# Copyright (c) mmselfdet contributors. All rights reserved.
"""mmselfdet registers straight into mmdet's registries (no child scope), so
configs keep ``default_scope='mmdet'`` and stock mmdet tools find our
modules once ``custom_imports=dict(imports=['mmselfdet'])`` ran.

Config bases named ``mmselfdet::...`` are also resolved (mmengine reads them
from ``mmselfdet/.mim/configs``; :mod:`mmselfdet.utils.paths`). mmengine
tags every typed dict of such a base with ``_scope_='mmselfdet'`` and builds
it in the registry of that scope, so :func:`register_scope_registries` adds,
below each mmdet registry (mmengine's where mmdet has none), an empty
registry of scope ``mmselfdet``: a lookup there falls through to mmdet's
registry, where our modules are, and on to mmengine's.
"""
from mmdet.registry import (DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, METRICS,
                            MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                            OPTIM_WRAPPERS, OPTIMIZERS,
                            PARAM_SCHEDULERS, TRANSFORMS, VISUALIZERS)

__all__ = ['DATASETS', 'DATA_SAMPLERS', 'HOOKS', 'LOOPS', 'METRICS', 'MODELS',
           'OPTIMIZERS', 'OPTIM_WRAPPERS',
           'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'TRANSFORMS',
           'VISUALIZERS']


def register_scope_registries(scope: str = 'mmselfdet') -> None:
    """Add an empty registry of ``scope`` below every mmdet registry (below
    mmengine's root registry where mmdet has none). Idempotent.

    Args:
        scope (str): The scope of ``mmselfdet::`` config bases.
    """
    import mmengine.registry as root
    from mmengine.registry import Registry
    for reg in vars(root).values():
        if not isinstance(reg, Registry) or reg.parent is not None:
            continue
        parent = reg.children.get('mmdet', reg)
        if scope not in parent.children:
            Registry(reg.name, parent=parent, scope=scope,
                     locations=['mmselfdet'])


def _register_config_scope() -> None:
    from mmselfdet.utils.paths import CONFIG_SCOPE, register_config_scope
    register_config_scope(CONFIG_SCOPE)
    register_scope_registries(CONFIG_SCOPE)


_register_config_scope()
