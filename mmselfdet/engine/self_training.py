# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.self_training` (re-export; the
registered names are unchanged). :mod:`mmselfdet.engine` itself no longer
imports SimDETR."""
from mmselfdet.simdetr.self_training import *  # noqa: F401,F403
from mmselfdet.simdetr.self_training import __all__  # noqa: F401
