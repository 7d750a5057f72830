# DetCo on ImageNet-1k, 8 GPUs x 32, 200 epochs (docs/methods.md §3): two global
# 224 crops + two 3x3 jigsaw tiles (RandomResizedCrop 255, scale 0.6-1,
# 85 px cells, 64 px patches).
_base_ = [
    '../_base_/models/detco_r50.py',
    '../_base_/datasets/imagenet_views.py',
    '../_base_/schedules/sgd_coslr-200e.py',
    '../_base_/default_runtime.py',
]
# local MLPs 9*C -> C -> 128 (the stage's own width), global MLPs
# C -> 2048 -> 128 (configs/detco/README.md)
model = dict(neck=dict(hid_channels=2048, local_hid_channels='stage'))
global_pipeline = _base_.color_augs + _base_.flip_pack
# each patch is its own view (DetCo / PIRL): JigsawPatches augments (and
# flips) every patch alone; the tile itself gets no augmentation and no
# RandomFlip. Our former reading, one jitter for the whole tile, is
# patch_pipeline=None with color_augs in local_pipeline.
local_pipeline = [dict(type='PackViewInputs')]
train_dataloader = dict(
    dataset=dict(pipeline=[
        _base_.load_image,
        dict(type='RandomCropViews', view_names=('view1', 'view2'), size=224,
             crop_scale=(0.2, 1.0)),
        dict(type='JigsawPatches', view_name='local1', crop_size=255,
             crop_scale=(0.6, 1.0), grid=3, patch_size=64,
             patch_pipeline=_base_.color_augs),
        dict(type='JigsawPatches', view_name='local2', crop_size=255,
             crop_scale=(0.6, 1.0), grid=3, patch_size=64,
             patch_pipeline=_base_.color_augs),
        dict(type='PackViews', pipelines=dict(
            view1=global_pipeline, view2=global_pipeline,
            local1=local_pipeline, local2=local_pipeline)),
    ]))
