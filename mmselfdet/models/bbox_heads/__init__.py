# Copyright (c) mmselfdet contributors. All rights reserved.
from .convfc_norm import (Shared4Conv1FCExtraNormBBoxHead,
                          Shared4Conv1FCSyncBNBBoxHead)

__all__ = ['Shared4Conv1FCSyncBNBBoxHead', 'Shared4Conv1FCExtraNormBBoxHead']
