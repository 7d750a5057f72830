# Copyright (c) mmselfdet contributors. All rights reserved.
from .byol import BYOLHead
from .contrastive import QueueContrastiveHead

__all__ = ['BYOLHead', 'QueueContrastiveHead']
