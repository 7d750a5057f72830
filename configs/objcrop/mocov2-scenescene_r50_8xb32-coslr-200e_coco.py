# Object-aware cropping baseline: Scene-Scene (two scene crops, MoCo v2
# unchanged) on the same data.
_base_ = ['./mocov2-objcrop_r50_8xb32-coslr-200e_coco.py']
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadProposals'),
    dict(type='ObjectAwareCrops', mode='scene_scene', box_source='proposals',
         dilation=(0.1, 0.2), out_size=224, crop_scale=(0.2, 1.0)),
    dict(type='PackViews',
         pipelines=dict(view1=view_pipeline, view2=view_pipeline)),
]))
