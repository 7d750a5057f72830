# Copyright (c) mmselfdet contributors. All rights reserved.
"""Box heads of the downstream (fine-tuning) detectors, registered in
mmdet's MODELS; the pretraining heads (losses) are in ``models/heads/``.
Formerly ``models/bbox_heads/`` (still importable, a re-export)."""
from .convfc_norm import (Shared4Conv1FCExtraNormBBoxHead,
                          Shared4Conv1FCSyncBNBBoxHead)

__all__ = ['Shared4Conv1FCSyncBNBBoxHead', 'Shared4Conv1FCExtraNormBBoxHead']
