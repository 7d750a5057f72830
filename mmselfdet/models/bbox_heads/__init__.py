# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former home of the downstream box heads, now
:mod:`mmselfdet.models.downstream_heads`; re-exports the same classes
(registered names unchanged)."""
from ..downstream_heads import (Shared4Conv1FCExtraNormBBoxHead,
                                Shared4Conv1FCSyncBNBBoxHead)

__all__ = ['Shared4Conv1FCSyncBNBBoxHead', 'Shared4Conv1FCExtraNormBBoxHead']
