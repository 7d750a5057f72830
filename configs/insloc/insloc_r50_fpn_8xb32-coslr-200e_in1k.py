# InsLoc (FPN) on ImageNet-1k, 8 GPUs x 32, 200 epochs (METHODS.md §1):
# foreground crops of one image pasted on two other images (256x256).
_base_ = [
    '../_base_/models/insloc_r50_fpn.py',
    '../_base_/datasets/imagenet_views.py',
    '../_base_/schedules/sgd_nesterov_coslr-200e.py',
    '../_base_/default_runtime.py',
]
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(**_base_.imagenet_dataset,
                     pipeline=[dict(type='LoadImageFromFile')]),
        pipeline=[
            dict(type='InstanceComposite', view_names=('query', 'key'),
                 fg_size=(128, 255), bg_size=256, crop_scale=(0.2, 1.0),
                 ratio=(0.5, 2.0)),
            dict(type='PackViews',
                 pipelines=dict(query=view_pipeline, key=view_pipeline)),
        ]))
