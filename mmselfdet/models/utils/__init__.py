# Copyright (c) mmselfdet contributors. All rights reserved.
from .dist import batch_shuffle, batch_unshuffle
from .feature_queue import FeatureQueue, all_queues, concat_all_gather
from .jigsaw import merge_jigsaw, split_jigsaw
from .momentum import CosineMomentumEMA, build_momentum_encoder

__all__ = ['FeatureQueue', 'all_queues', 'concat_all_gather', 'batch_shuffle',
           'batch_unshuffle', 'build_momentum_encoder', 'CosineMomentumEMA',
           'merge_jigsaw', 'split_jigsaw']
