# Copyright (c) mmselfdet contributors. All rights reserved.
from .byol import BYOLHead
from .contrastive import QueueContrastiveHead
from .soco_crops import SoCoCropHead

__all__ = ['BYOLHead', 'QueueContrastiveHead', 'SoCoCropHead']
