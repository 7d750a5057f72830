# Copyright (c) mmselfdet contributors. All rights reserved.
"""Former module path of the downstream 4conv1fc heads; see
:mod:`mmselfdet.models.downstream_heads.convfc_norm`."""
from ..downstream_heads.convfc_norm import (  # noqa: F401
    Shared4Conv1FCExtraNormBBoxHead, Shared4Conv1FCSyncBNBBoxHead)

__all__ = ['Shared4Conv1FCSyncBNBBoxHead', 'Shared4Conv1FCExtraNormBBoxHead']
