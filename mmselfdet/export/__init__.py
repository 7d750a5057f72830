# Copyright (c) mmselfdet contributors. All rights reserved.
from .transfer import (TRANSFER_SETS, export_state_dict, key_report,
                       load_checkpoint_file, method_of, transfer_set)

__all__ = ['TRANSFER_SETS', 'export_state_dict', 'key_report',
           'load_checkpoint_file', 'method_of', 'transfer_set']
