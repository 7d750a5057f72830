# Copyright (c) mmselfdet contributors. All rights reserved.
"""Old import path of :mod:`mmselfdet.engine.hooks.safe_checkpoint_hook`."""
from .hooks.safe_checkpoint_hook import (SafeCheckpointHook,  # noqa: F401
                                         get_rng_state,
                                         replay_trained_data_on_resume,
                                         set_rng_state)
