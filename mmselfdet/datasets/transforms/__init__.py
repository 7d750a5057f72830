# Copyright (c) mmselfdet contributors. All rights reserved.
from .geometric import RandomResizedCropWithBoxes
from .pixel import ColorJitter, GaussianBlur

__all__ = ['RandomResizedCropWithBoxes', 'ColorJitter', 'GaussianBlur']
