# Copyright (c) mmselfdet contributors. All rights reserved.
from .box_jitter import RandomBoxJitter
from .compositing import InstanceComposite
from .crop_views import RandomCropViews, add_views, crop_view
from .geometric import (RandomResizedCropWithBoxes, compose_homography,
                        crop_resize_view, sample_resized_crop)
from .jigsaw import JigsawPatches
from .loading import ImageLoadError, LoadImageRobust
from .object_crops import ObjectAwareCrops
from .pixel import ColorJitter, GaussianBlur
from .soco_views import SoCoViews
from .views import PackViewInputs, PackViews, make_view, map_boxes

__all__ = [
    'RandomResizedCropWithBoxes', 'ColorJitter', 'GaussianBlur', 'PackViews',
    'PackViewInputs', 'InstanceComposite', 'RandomCropViews', 'JigsawPatches',
    'LoadImageRobust', 'ImageLoadError', 'RandomBoxJitter', 'ObjectAwareCrops',
    'SoCoViews', 'compose_homography', 'crop_resize_view', 'make_view',
    'map_boxes', 'add_views', 'crop_view', 'sample_resized_crop'
]
