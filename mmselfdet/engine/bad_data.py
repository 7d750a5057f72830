# Copyright (c) mmselfdet contributors. All rights reserved.
"""Old import path of
:mod:`mmselfdet.engine.hooks.bad_image_summary_hook`."""
from .hooks.bad_image_summary_hook import (  # noqa: F401
    BadImageSummaryHook, iter_pipeline_transforms)
