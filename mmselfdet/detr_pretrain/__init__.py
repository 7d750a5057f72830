# Copyright (c) mmselfdet contributors. All rights reserved.
"""DETR pretraining (SimDETR-style): feature-cluster proposals (stage A,
:class:`mmselfdet.models.proposers.FeatureClusterProposer`), dataset-level
pseudo-classes (stage B), COCO json writing and self-training rounds
(stage D, driven by :class:`mmselfdet.engine.SelfTrainingHook`). Nothing
here registers a module: detectors are stock mmdet."""
from .coco import (cluster_class_names, proposals_to_coco, read_coco_images,
                   write_coco_json)
from .feature_proposals import (done_shards, features_path,
                                load_feature_proposals, merge_shards,
                                shard_dir, write_shard)
from .pseudo_labels import cluster_features
from .rounds import (pseudo_labels_from_proposals, round_file,
                     select_predictions, write_round)

__all__ = [
    'cluster_class_names', 'proposals_to_coco', 'read_coco_images',
    'write_coco_json', 'done_shards', 'features_path',
    'load_feature_proposals', 'merge_shards', 'shard_dir', 'write_shard',
    'cluster_features', 'pseudo_labels_from_proposals', 'round_file',
    'select_predictions', 'write_round'
]
