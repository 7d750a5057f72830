# DetCo on the built-in toy set (CPU): ResNet-18, 64 px global crops,
# jigsaw tiles of 3x3 x 16 px patches from 63 px crops, global MLPs
# 512-128, local MLPs 9*C -> C -> 128, K=256 per queue, m=0.99, 60 steps.
_base_ = [
    '../_base_/models/detco_r50.py',
    '../_base_/datasets/toy_views.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    queue_len=256,
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=(64, 128, 256, 512), hid_channels=512,
              local_hid_channels='stage'))
global_pipeline = _base_.color_augs + _base_.flip_pack
# pixel augmentations per patch inside JigsawPatches (as the paper config)
local_pipeline = [dict(type='PackViewInputs')]
train_dataloader = dict(
    dataset=dict(pipeline=[
        _base_.load_image,
        dict(type='RandomCropViews', view_names=('view1', 'view2'), size=64,
             crop_scale=(0.2, 1.0)),
        dict(type='JigsawPatches', view_name='local1', crop_size=63,
             crop_scale=(0.6, 1.0), grid=3, patch_size=16,
             patch_pipeline=_base_.color_augs),
        dict(type='JigsawPatches', view_name='local2', crop_size=63,
             crop_scale=(0.6, 1.0), grid=3, patch_size=16,
             patch_pipeline=_base_.color_augs),
        dict(type='PackViews', pipelines=dict(
            view1=global_pipeline, view2=global_pipeline,
            local1=local_pipeline, local2=local_pipeline)),
    ]))

# 60 steps keep the run under 2 minutes on 2 CPU cores
max_iters = 60
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
