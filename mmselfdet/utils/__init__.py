# Copyright (c) mmselfdet contributors. All rights reserved.
"""Helpers without registered modules: atomic file writes, image decoding
and image listing (numpy / OpenCV only, importable in any worker process)."""
from .image import (ImageLoadError, decode_image, read_image_bgr,
                    to_bgr_uint8, truncation_reason)
from .image_list import list_image_infos, relative_image_name
from .io import atomic_open, atomic_write

__all__ = [
    'atomic_open', 'atomic_write', 'ImageLoadError', 'decode_image',
    'read_image_bgr', 'to_bgr_uint8', 'truncation_reason',
    'list_image_infos', 'relative_image_name'
]
