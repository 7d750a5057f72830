# Copyright (c) mmselfdet contributors. All rights reserved.
from .base import BaseSelfSupDetector
from .byol import BYOL
from .detco import DetCo
from .insloc import InsLoc
from .mocov2 import MoCoV2
from .soco import SoCo

__all__ = ['BaseSelfSupDetector', 'BYOL', 'DetCo', 'InsLoc', 'MoCoV2', 'SoCo']
