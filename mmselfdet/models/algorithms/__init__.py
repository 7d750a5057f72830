# Copyright (c) mmselfdet contributors. All rights reserved.
from .base import BaseSelfSupDetector, BaseSelfSupervisor
from .byol import BYOL
from .detco import DetCo
from .insloc import InsLoc
from .mocov2 import MoCoV2
from .soco import SoCo

__all__ = ['BaseSelfSupervisor', 'BaseSelfSupDetector', 'BYOL', 'DetCo',
           'InsLoc', 'MoCoV2', 'SoCo']
