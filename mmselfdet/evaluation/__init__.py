# Copyright (c) mmselfdet contributors. All rights reserved.
"""Evaluation helpers (proposal recall)."""
from .proposal_recall import average_recall, box_iou, match_recall

__all__ = ['average_recall', 'box_iou', 'match_recall']
