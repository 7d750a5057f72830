# Copyright (c) mmselfdet contributors. All rights reserved.
from . import transforms  # noqa: F401
from .collate import multi_view_collate
from .unlabeled import UnlabeledDataset

__all__ = ['UnlabeledDataset', 'multi_view_collate']
