# Copyright (c) mmselfdet contributors. All rights reserved.
from .box_ops import anchor_grid, anchor_jitter, box_iou, clip_boxes, relative_jitter

__all__ = [
    'anchor_grid', 'anchor_jitter', 'box_iou', 'clip_boxes', 'relative_jitter'
]
