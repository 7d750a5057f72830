# Copyright (c) mmselfdet contributors. All rights reserved.
from .embedders import ConvFCBoxEmbedder, ResLayerBoxEmbedder
from .pooler import MultiLevelRoIPooler

__all__ = ['ConvFCBoxEmbedder', 'ResLayerBoxEmbedder', 'MultiLevelRoIPooler']
