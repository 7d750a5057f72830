# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.feature_proposals` (re-export)."""
from mmselfdet.simdetr.feature_proposals import *  # noqa: F401,F403
from mmselfdet.simdetr.feature_proposals import __all__  # noqa: F401
