# Copyright (c) mmselfdet contributors. All rights reserved.
from . import algorithms, data_preprocessors, heads, necks, roi, utils  # noqa: F401
from . import bbox_heads  # noqa: F401  (downstream box heads)
