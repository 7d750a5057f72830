# Object-aware cropping over BYOL on the toy set (CPU, ~2 min).
_base_ = ['../byol/byol_r18_1xb32-150it_toy.py']
view_pipeline = _base_.view_pipeline
train_dataloader = dict(dataset=dict(
    ann_file='annotations/unlabeled.json', keep_boxes=True,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='ObjectAwareCrops', mode='obj_obj_dilate',
             box_source='gt_bboxes', dilation=(0.1, 0.2), out_size=64,
             crop_scale=(0.2, 1.0), min_box_size=8, min_crop_size=16),
        dict(type='PackViews', pipelines=dict(
            view1=[v for v in view_pipeline
                   if v['type'] != 'RandomResizedCropWithBoxes'],
            view2=[v for v in view_pipeline
                   if v['type'] != 'RandomResizedCropWithBoxes'])),
    ]))
