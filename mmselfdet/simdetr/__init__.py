# Copyright (c) mmselfdet contributors. All rights reserved.
"""SimDETR-style DETR pretraining, one package (configs/simdetr/README.md).

* stage A: :class:`FeatureClusterProposer` (``feature_cluster.py``; the
  tool ``tools/detr_pretrain/make_proposals.py``) and its resumable shard
  files (``feature_proposals.py``);
* stage B: dataset-level pseudo-classes (``pseudo_labels.py``) and their
  COCO json (``coco.py``);
* stage C: stock mmdet detectors, nothing here;
* stage D: self-training rounds (``rounds.py``: which predictions become
  labels; ``relabel.py``: one round's relabelling; ``self_training.py``:
  the training loops that run the rounds and rebuild their dataloader;
  ``self_training_hook.py``: the former hook, removed: building it raises,
  naming the loop).

Registers ``FeatureClusterProposer`` (MODELS), ``SelfTrainingLoop`` and
``SelfTrainingEpochLoop`` (LOOPS) and ``SelfTrainingHook`` (HOOKS; its
error only). The
former homes ``mmselfdet.detr_pretrain``,
``mmselfdet.models.proposers.feature_cluster`` and
``mmselfdet.engine.self_training`` re-export from here.
"""
from .coco import (cluster_class_names, proposals_to_coco, read_coco_images,
                   write_coco_json)
from .feature_cluster import (FeatureClusterProposer, cluster_components,
                              kmeans_locations)
from .feature_proposals import (done_shards, features_path,
                                load_feature_proposals, merge_shards,
                                shard_dir, write_shard)
from .pseudo_labels import cluster_features
from .rounds import (SELECTION_MODES, pseudo_labels_from_proposals,
                     round_file, select_predictions, write_round)
from .relabel import SelfTrainingRounds
from .self_training import (SelfTrainingEpochLoop, SelfTrainingLoop,
                            SelfTrainingStateHook)
from .self_training_hook import SelfTrainingHook

__all__ = [
    'cluster_class_names', 'proposals_to_coco', 'read_coco_images',
    'write_coco_json', 'FeatureClusterProposer', 'cluster_components',
    'kmeans_locations', 'done_shards', 'features_path',
    'load_feature_proposals', 'merge_shards', 'shard_dir', 'write_shard',
    'cluster_features', 'SELECTION_MODES', 'pseudo_labels_from_proposals',
    'round_file', 'select_predictions', 'write_round', 'SelfTrainingRounds',
    'SelfTrainingLoop', 'SelfTrainingEpochLoop', 'SelfTrainingStateHook',
    'SelfTrainingHook'
]
