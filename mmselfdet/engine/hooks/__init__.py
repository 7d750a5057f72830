# Copyright (c) mmselfdet contributors. All rights reserved.
"""The hooks of the pretraining runs, one per file."""
from .bad_image_summary_hook import BadImageSummaryHook
from .channels_last_hook import ChannelsLastHook
from .momentum_schedule_hook import MomentumScheduleHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .safe_checkpoint_hook import (SafeCheckpointHook, get_rng_state,
                                   replay_trained_data_on_resume,
                                   set_rng_state)

__all__ = ['BadImageSummaryHook', 'ChannelsLastHook', 'MomentumScheduleHook',
           'NonFiniteLossHook', 'SafeCheckpointHook', 'get_rng_state',
           'set_rng_state', 'replay_trained_data_on_resume']
