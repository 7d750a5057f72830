# Mask R-CNN R50-C4 1x in the papers' protocol: mmdet's C4 model (res5 as the
# RoI head) made pytorch-style with RGB input, SyncBN in res2-res5, nothing
# frozen, multi-scale 640-800.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py',
          './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = _base_.c4_model
train_dataloader = dict(dataset=dict(pipeline=_base_.ms_train_pipeline))
