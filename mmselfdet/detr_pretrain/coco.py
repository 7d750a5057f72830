# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.coco` (re-export)."""
from mmselfdet.simdetr.coco import *  # noqa: F401,F403
from mmselfdet.simdetr.coco import __all__  # noqa: F401
