# ImageNet-1k train images, labels ignored; MoCo v2 two-view scene crops
# (docs/methods.md §0). Expects data/imagenet/{train/,meta/train.txt}.
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
    # pinned batches: their copies to the GPU run beside the host (the
    # MoCo reference's loader; the preprocessor copies with non_blocking)
    pin_memory=True,
    drop_last=True,
    # views stacked, data samples by value: cheap to move from the workers
    # (mmselfdet/datasets/collate.py; pseudo_collate gives the same batch)
    collate_fn=dict(type='multi_view_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img='train/'),
        check_files=False,  # 1.28M stat() calls at start-up are not worth it
        pipeline=train_pipeline))

# The switch to GPU-side pixel augmentation (issue 18, see the *-gpuaug
# configs): workers only decode, crop and pack; the preprocessor applies
# `gpu_augment` (the same ops as view_pipeline, flip included) on the batch:
#   model = dict(data_preprocessor=dict(gpu_augment=_base_.gpu_augment))
#   train_dataloader = dict(dataset=dict(pipeline=_base_.gpu_train_pipeline))
gpu_view_pipeline = view_pipeline[:1] + _base_.pack_only
gpu_train_pipeline = train_pipeline[:2] + [
    dict(type='MultiBranch', branch_field=['view1', 'view2'],
         view1=gpu_view_pipeline, view2=gpu_view_pipeline),
]
gpu_augment = dict(view1=_base_.gpu_augs, view2=_base_.gpu_augs)
