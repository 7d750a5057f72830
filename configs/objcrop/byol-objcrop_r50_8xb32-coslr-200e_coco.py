# Object-aware cropping (Obj-Obj+Dilate) over BYOL on COCO train2017.
# LARS lr 0.3 for the declared batch 8 x 32 = 256 (BYOL's 0.3 per 256;
# the LARS schedule is written for 256 images).
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/coco_unlabeled_proposals.py',
    '../_base_/schedules/lars_coslr-200e.py',
    '../_base_/default_runtime.py',
]
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadProposals'),
    dict(type='ObjectAwareCrops', mode='obj_obj_dilate',
         box_source='proposals', dilation=(0.1, 0.2), out_size=224,
         crop_scale=(0.2, 1.0)),
    dict(type='PackViews',
         pipelines=dict(view1=view_pipeline, view2=view_pipeline)),
]))
