# The built-in toy set (tools/make_toy_dataset.py), `unlabeled` split,
# labels ignored; MoCo v2 views at toy size (64 px crops of 128 px scenes).
_base_ = ['./view_augs.py']
dataset_type = 'UnlabeledDataset'
data_root = 'data/toy/'
crop_size = 64

view_pipeline = [
    dict(type='RandomResizedCropWithBoxes', scale=crop_size,
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
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # budgets count steps
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/unlabeled.json',
        data_prefix=dict(img='unlabeled/'),
        pipeline=train_pipeline))
