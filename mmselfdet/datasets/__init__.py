# Copyright (c) mmselfdet contributors. All rights reserved.
from . import transforms  # noqa: F401
