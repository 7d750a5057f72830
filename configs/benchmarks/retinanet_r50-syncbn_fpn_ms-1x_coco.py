# RetinaNet R50-FPN 1x in the papers' protocol (SyncBN in backbone and FPN,
# nothing frozen, multi-scale 640-800, lr 0.01 at batch 16). The head keeps
# mmdet's (and detectron2's) un-normalised 4conv towers.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
          './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    data_preprocessor=_base_.rgb_preprocessor,
    backbone=_base_.backbone_protocol,
    neck=dict(norm_cfg=_base_.sync_bn))
train_dataloader = dict(dataset=dict(pipeline=_base_.ms_train_pipeline_box))
