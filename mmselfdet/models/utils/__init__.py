# Copyright (c) mmselfdet contributors. All rights reserved.
from .box_encoder import BoxEncoder, EncoderFeatures
from .dist import batch_shuffle, batch_unshuffle
from .feature_queue import FeatureQueue, all_queues, concat_all_gather
from .jigsaw import merge_jigsaw, split_jigsaw
from .host_copy import start_host_copy
from .momentum import (CosineMomentumEMA, MomentumEMA, build_momentum_encoder,
                       momentum_copy, momentum_keys)
from .split_norm import SplitBatchNorm
from .view_geometry import (clip_visible, crop_patches, map_boxes_batched,
                            shared_region, view_matrices)

__all__ = ['BoxEncoder', 'EncoderFeatures', 'FeatureQueue', 'all_queues',
           'concat_all_gather', 'batch_shuffle', 'batch_unshuffle',
           'build_momentum_encoder', 'momentum_copy', 'momentum_keys',
           'CosineMomentumEMA', 'MomentumEMA', 'start_host_copy',
           'merge_jigsaw', 'split_jigsaw',
           'clip_visible', 'crop_patches', 'map_boxes_batched',
           'shared_region', 'view_matrices', 'SplitBatchNorm']
