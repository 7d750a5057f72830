# Object-aware cropping (Obj-Obj+Dilate, ground-truth boxes) over BYOL on
# the toy set (CPU, ~2 min); model as byol_r18_1xb32-110it_toy.py.
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/toy_views.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128),
    head=dict(predictor=dict(in_channels=128, hid_channels=512,
                             out_channels=128)))
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ObjectAwareCrops', mode='obj_obj_dilate',
         box_source='gt_bboxes', dilation=(0.1, 0.2), out_size=64,
         crop_scale=(0.2, 1.0), min_box_size=8),
    dict(type='PackViews',
         pipelines=dict(view1=view_pipeline, view2=view_pipeline)),
]))

# 110 steps keep the run under 2 minutes on 2 CPU cores
max_iters = 110
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
