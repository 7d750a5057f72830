# Copyright (c) mmselfdet contributors. All rights reserved.
from .geometric import (RandomResizedCropWithBoxes, compose_homography,
                        crop_resize_view)
from .pixel import ColorJitter, GaussianBlur
from .views import PackViewInputs, PackViews, make_view, map_boxes

__all__ = [
    'RandomResizedCropWithBoxes', 'ColorJitter', 'GaussianBlur', 'PackViews',
    'PackViewInputs',
    'compose_homography', 'crop_resize_view', 'make_view', 'map_boxes'
]
