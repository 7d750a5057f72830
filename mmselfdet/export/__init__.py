# Copyright (c) mmselfdet contributors. All rights reserved.
from .targets import (TARGETS, convert_keys, load_detectron2_pkl,
                      mmdet_key_to_detectron2, mmdet_key_to_torchvision,
                      save_target, torchvision_resnet_keys)
from .transfer import (DETECTOR_CLASS_LAYERS, TRANSFER_SETS, excluded_prefixes,
                       export_state_dict, format_key_report, key_report,
                       load_checkpoint_file, method_of, module_of,
                       move_res5_to_roi_head, transfer_set)

__all__ = [
    'DETECTOR_CLASS_LAYERS', 'TARGETS', 'TRANSFER_SETS', 'convert_keys',
    'excluded_prefixes', 'export_state_dict', 'format_key_report',
    'key_report', 'load_checkpoint_file', 'load_detectron2_pkl', 'method_of',
    'mmdet_key_to_detectron2', 'mmdet_key_to_torchvision', 'module_of',
    'move_res5_to_roi_head', 'save_target', 'torchvision_resnet_keys',
    'transfer_set'
]
