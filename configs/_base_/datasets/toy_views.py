# The built-in toy set for view-maker pipelines (InsLoc, DetCo, object-aware
# crops): `unlabeled` split with its ground-truth boxes kept (used only by
# box_source='gt_bboxes' configs; other methods ignore them).
_base_ = ['./view_augs.py']
dataset_type = 'UnlabeledDataset'
data_root = 'data/toy/'
toy_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/unlabeled.json',
    data_prefix=dict(img='unlabeled/'),
    keep_boxes=True)
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    # views stacked, data samples by value: cheap to move from the workers
    # (mmselfdet/datasets/collate.py; pseudo_collate gives the same batch)
    collate_fn=dict(type='multi_view_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=toy_dataset)
