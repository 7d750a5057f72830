# Mask R-CNN R50-FPN 1x (12 epochs, 90k iterations at batch 16) in the papers'
# protocol (docs/methods.md §7): SyncBN in backbone, FPN, the 4conv1fc box head and
# the 4conv mask head; frozen_stages=-1, norm_eval=False; multi-scale 640-800.
# Random init as it stands; the per-method configs in the subfolders load a
# pretraining export on top of it.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    data_preprocessor=_base_.rgb_preprocessor,
    backbone=_base_.backbone_protocol,
    neck=dict(norm_cfg=_base_.sync_bn),
    roi_head=dict(
        bbox_head=dict(_delete_=True, type='Shared4Conv1FCSyncBNBBoxHead',
                       in_channels=256, fc_out_channels=1024, roi_feat_size=7,
                       num_classes=80, norm_cfg=_base_.sync_bn,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                       target_means=[0., 0., 0., 0.],
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       reg_class_agnostic=False,
                       loss_cls=dict(type='CrossEntropyLoss',
                                     use_sigmoid=False, loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_head=dict(norm_cfg=_base_.sync_bn)))
train_dataloader = dict(dataset=dict(pipeline=_base_.ms_train_pipeline))
