# Copyright (c) mmselfdet contributors. All rights reserved.
"""Evaluation helpers (proposal recall, frozen-feature probe)."""
from .probe import knn_scores, linear_probe, mean_average_precision, run_probe
from .proposal_recall import average_recall, box_iou, match_recall

__all__ = [
    'average_recall', 'box_iou', 'match_recall', 'knn_scores', 'linear_probe',
    'mean_average_precision', 'run_probe'
]
