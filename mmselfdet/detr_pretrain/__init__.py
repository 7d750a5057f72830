# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former home of SimDETR's stages A-D: re-exports :mod:`mmselfdet.simdetr`
so old imports keep working. New code imports ``mmselfdet.simdetr``."""
from mmselfdet.simdetr import *  # noqa: F401,F403
from mmselfdet.simdetr import __all__  # noqa: F401
