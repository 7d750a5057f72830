# DETR R50, 150 epochs, DETR's own augmentation; SyncBN in a fully trainable
# backbone (no frozen stage, norm_eval=False), no ImageNet init.
_base_ = ['mmdet::detr/detr_r50_8xb2-150e_coco.py', './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(backbone=_base_.backbone_protocol)
