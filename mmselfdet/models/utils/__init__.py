# Copyright (c) mmselfdet contributors. All rights reserved.
from .dist import batch_shuffle, batch_unshuffle
from .momentum import CosineMomentumEMA, build_momentum_encoder
from .feature_queue import FeatureQueue, all_queues, concat_all_gather

__all__ = ['FeatureQueue', 'all_queues', 'concat_all_gather', 'batch_shuffle',
           'batch_unshuffle', 'build_momentum_encoder', 'CosineMomentumEMA']
