# Copyright (c) mmselfdet contributors. All rights reserved.
"""mmselfdet registers straight into mmdet's registries (no child scope), so
configs keep ``default_scope='mmdet'`` and stock mmdet tools find our
modules once ``custom_imports=dict(imports=['mmselfdet'])`` ran."""
from mmdet.registry import (DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, METRICS,
                            MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                            OPTIM_WRAPPERS, OPTIMIZERS,
                            PARAM_SCHEDULERS, TRANSFORMS)

__all__ = ['DATASETS', 'DATA_SAMPLERS', 'HOOKS', 'LOOPS', 'METRICS', 'MODELS',
           'OPTIMIZERS', 'OPTIM_WRAPPERS',
           'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'TRANSFORMS']
