# Copyright (c) mmselfdet contributors. All rights reserved.
from .detco import MultiStageProjector
from .mlp import MLPProjector

__all__ = ['MLPProjector', 'MultiStageProjector']
