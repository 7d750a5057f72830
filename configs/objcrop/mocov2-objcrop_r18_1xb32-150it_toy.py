# Object-aware cropping over MoCo v2 on the toy set (CPU, ~2 min):
# Obj-Obj+Dilate crops around the toy ground-truth boxes (box_source
# 'gt_bboxes', the paper's upper-bound ablation; a selective-search file
# works the same with box_source='proposals' + dataset.proposal_file).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/toy_views.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    queue_len=256,
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))
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
