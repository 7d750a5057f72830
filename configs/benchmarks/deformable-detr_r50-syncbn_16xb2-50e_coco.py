# Deformable DETR R50 (single scale head, no box refinement), 50 epochs, with
# DETR's own augmentation (multi-scale 480-800 + random crop), as DETReg /
# SimDETR fine-tune it; SyncBN in a fully trainable backbone (no frozen stage,
# norm_eval=False), no ImageNet init.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
          './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(backbone=_base_.backbone_protocol)
