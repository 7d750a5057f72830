# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former path of :mod:`mmselfdet.simdetr.feature_cluster` (re-export; the
registered name ``FeatureClusterProposer`` is unchanged)."""
from mmselfdet.simdetr.feature_cluster import *  # noqa: F401,F403
from mmselfdet.simdetr.feature_cluster import __all__  # noqa: F401
