# Object-aware cropping (docs/methods.md §2) over MoCo v2 on COCO train2017:
# Obj-Obj+Dilate views from selective-search proposals. Switch `mode` to
# 'obj_scene' or 'scene_scene' (baseline), and `box_source` to 'gt_bboxes'
# (with dataset keep_boxes=True: the ground-truth upper bound).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/coco_unlabeled_proposals.py',
    '../_base_/schedules/sgd_coslr-200e.py',
    '../_base_/default_runtime.py',
]
mode = 'obj_obj_dilate'
box_source = 'proposals'
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadProposals'),
    dict(type='ObjectAwareCrops', mode=mode, box_source=box_source,
         dilation=(0.1, 0.2), out_size=224, crop_scale=(0.2, 1.0)),
    dict(type='PackViews',
         pipelines=dict(view1=view_pipeline, view2=view_pipeline)),
]))
