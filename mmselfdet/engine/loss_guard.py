# Copyright (c) mmselfdet contributors. All rights reserved.
"""Old import path of the non-finite loss guard: the deprecated hook
(:mod:`mmselfdet.engine.hooks.nonfinite_loss_hook`) and the optimizer
wrappers that replace it (:mod:`mmselfdet.engine.optim_wrappers`)."""
from .hooks.nonfinite_loss_hook import NonFiniteLossHook  # noqa: F401
from .optim_wrappers.nonfinite_guard import (  # noqa: F401
    NonFiniteGuardAmpOptimWrapper, NonFiniteGuardOptimWrapper,
    batch_image_names)
