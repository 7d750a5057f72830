# Copyright (c) mmselfdet contributors. All rights reserved.
from .compositing import InstanceComposite
from .crop_views import RandomCropViews, add_views, crop_view
from .geometric import (RandomResizedCropWithBoxes, compose_homography,
                        crop_resize_view)
from .jigsaw import JigsawPatches
from .loading import ImageLoadError, LoadImageRobust
from .pixel import ColorJitter, GaussianBlur
from .views import PackViewInputs, PackViews, make_view, map_boxes

__all__ = [
    'RandomResizedCropWithBoxes', 'ColorJitter', 'GaussianBlur', 'PackViews',
    'PackViewInputs',
    'compose_homography', 'crop_resize_view', 'make_view', 'map_boxes'
]
__all__ += [
    'InstanceComposite', 'RandomCropViews', 'JigsawPatches', 'LoadImageRobust',
    'ImageLoadError', 'add_views', 'crop_view'
]
