# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.pseudo_labels` (re-export)."""
from mmselfdet.simdetr.pseudo_labels import *  # noqa: F401,F403
from mmselfdet.simdetr.pseudo_labels import __all__  # noqa: F401
