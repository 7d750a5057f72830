# ImageNet-1k train images, labels ignored; MoCo v2 two-view scene crops
# (METHODS.md §0). Expects data/imagenet/{train/,meta/train.txt}.
_base_ = ['./view_augs.py']
dataset_type = 'UnlabeledDataset'
data_root = 'data/imagenet/'

view_pipeline = [
    dict(type='RandomResizedCropWithBoxes', scale=224,
         crop_scale=(0.2, 1.0)),
] + _base_.color_augs + _base_.flip_pack
train_pipeline = [
    _base_.load_image,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='MultiBranch', branch_field=['view1', 'view2'],
         view1=view_pipeline, view2=view_pipeline),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img='train/'),
        check_files=False,  # 1.28M stat() calls at start-up are not worth it
        pipeline=train_pipeline))
