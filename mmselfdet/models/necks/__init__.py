# Copyright (c) mmselfdet contributors. All rights reserved.
from .mlp import MLPProjector

__all__ = ['MLPProjector']
