# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.rounds` (re-export)."""
from mmselfdet.simdetr.rounds import *  # noqa: F401,F403
from mmselfdet.simdetr.rounds import __all__  # noqa: F401
