# Copyright (c) mmselfdet contributors. All rights reserved.
from . import transforms  # noqa: F401
from .unlabeled import UnlabeledDataset

__all__ = ['UnlabeledDataset']
