# Copyright (c) mmselfdet contributors. All rights reserved.
from .checkpoint import (register_checkpoint_safe_globals,
                         safe_checkpoint_globals)
from .bad_data import BadImageSummaryHook
from .dist import (CPU_DDP_WRAPPER, finish_launch, init_cpu_dist_if_needed,
                   prepare_launch)
from .hooks import (ChannelsLastHook, MomentumScheduleHook, NonFiniteLossHook,
                    SafeCheckpointHook)
from .lars import LARS, LARSOptimWrapperConstructor
from .optim_wrappers import (NonFiniteGuardAmpOptimWrapper,
                             NonFiniteGuardOptimWrapper)

register_checkpoint_safe_globals()
__all__ = ['BadImageSummaryHook', 'SafeCheckpointHook', 'NonFiniteLossHook',
           'ChannelsLastHook']

__all__ += ['register_checkpoint_safe_globals', 'safe_checkpoint_globals',
           'init_cpu_dist_if_needed', 'CPU_DDP_WRAPPER', 'prepare_launch',
           'finish_launch', 'MomentumScheduleHook', 'LARS',
           'LARSOptimWrapperConstructor', 'NonFiniteGuardOptimWrapper',
           'NonFiniteGuardAmpOptimWrapper']
