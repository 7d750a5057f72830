# Copyright (c) mmselfdet contributors. All rights reserved.
from .nonfinite_guard import (NonFiniteGuardAmpOptimWrapper,
                              NonFiniteGuardMixin, NonFiniteGuardOptimWrapper,
                              batch_image_names)

__all__ = ['NonFiniteGuardMixin', 'NonFiniteGuardOptimWrapper',
           'NonFiniteGuardAmpOptimWrapper', 'batch_image_names']
