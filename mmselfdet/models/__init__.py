# Copyright (c) mmselfdet contributors. All rights reserved.
from . import (algorithms, data_preprocessors, heads, necks, proposers,  # noqa: F401
               roi, utils)
from . import downstream_heads  # noqa: F401  (downstream box heads)
