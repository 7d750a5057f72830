# InsLoc (FPN) on the built-in toy set (CPU): ResNet-18 + FPN(64),
# foregrounds of 24-48 px pasted on 64x64 backgrounds, 4-conv head (the
# official 4conv1fc; the toy two-stage detector takes it whole),
# K=256 per level, m=0.99, 150 steps. Anchor jitter at P5 with toy-sized
# anchors (stride 8, sizes 16-48) and the official rule otherwise (five
# ratios, centres on the grid points, NMS(0.7) before the random pick).
_base_ = [
    '../_base_/models/insloc_r50_fpn.py',
    '../_base_/datasets/toy_views.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    queue_len=256,
    momentum=0.01,
    jitter_cfg=dict(stride=8, sizes=(16, 32, 48),
                    ratios=(0.5, 0.75, 1.0, 1.5, 2.0), iou_thr=0.5),
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    box_embedder=dict(in_channels=64, conv_channels=64, num_convs=4,
                      fc_channels=256))
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(**_base_.toy_dataset,
                     pipeline=[_base_.load_image]),
        pipeline=[
            dict(type='InstanceComposite', view_names=('query', 'key'),
                 fg_size=(24, 48), bg_size=64, crop_scale=(0.2, 1.0),
                 ratio=(0.5, 2.0)),
            dict(type='PackViews',
                 pipelines=dict(query=view_pipeline, key=view_pipeline)),
        ]))
