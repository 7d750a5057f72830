# COCO train2017 images (labels ignored) with offline selective-search
# proposals from tools/generate_proposals.py, for object-aware crops.
_base_ = ['./view_augs.py']
data_root = 'data/coco/'
coco_dataset = dict(
    type='UnlabeledDataset',
    data_root=data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'),
    proposal_file='proposals/ss_fast_train2017.json',
    missing_proposals='whole_image')
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
    dataset=coco_dataset)
