# Faster R-CNN R50-C4 on VOC07+12 trainval, tested on VOC07 test: the MoCo /
# InsLoc / DetCo VOC protocol: 24k iterations at batch 16, lr 0.02, steps at
# 18k and 22k, multi-scale short side 480-800, SyncBN in res2-res5, nothing
# frozen, RGB + ImageNet mean/std.
_base_ = ['mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py',
          './_base_/protocol.py']
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
default_scope = 'mmdet'

model = _base_.c4_model
max_iter = 24000
train_cfg = dict(max_iters=max_iter, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_iter, by_epoch=False,
         milestones=[18000, 22000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
