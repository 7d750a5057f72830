# ImageNet-1k train images for view-maker pipelines (InsLoc, DetCo).
_base_ = ['./view_augs.py']
dataset_type = 'UnlabeledDataset'
data_root = 'data/imagenet/'
imagenet_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='meta/train.txt',
    data_prefix=dict(img='train/'),
    check_files=False)
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
    dataset=imagenet_dataset)
