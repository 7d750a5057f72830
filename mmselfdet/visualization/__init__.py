# Copyright (c) mmselfdet contributors. All rights reserved.
"""Visualizers, registered in mmdet's VISUALIZERS (``ViewsVisualizer``:
the views of a pipeline, ``tools/browse_views.py``)."""
from .views_visualizer import ViewsVisualizer, sample_views, view_boxes

__all__ = ['ViewsVisualizer', 'sample_views', 'view_boxes']
