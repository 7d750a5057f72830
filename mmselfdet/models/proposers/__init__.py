# Copyright (c) mmselfdet contributors. All rights reserved.
from .heatmap import HeatMapProposer  # noqa: F401
from .feature_cluster import FeatureClusterProposer  # noqa: F401
from .selective_search import SelectiveSearchProposer  # noqa: F401
