# Copyright (c) mmselfdet contributors. All rights reserved.
from .contrastive import QueueContrastiveHead

__all__ = ['QueueContrastiveHead']
