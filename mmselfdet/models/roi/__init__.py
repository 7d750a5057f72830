# Copyright (c) mmselfdet contributors. All rights reserved.
from .embedders import ConvFCBoxEmbedder, ResLayerBoxEmbedder
from .pooler import MultiLevelRoIPooler, boxes_to_rois

__all__ = ['ConvFCBoxEmbedder', 'ResLayerBoxEmbedder', 'MultiLevelRoIPooler',
           'boxes_to_rois']
