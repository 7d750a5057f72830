# InsLoc (FPN) on ImageNet-1k, 8 GPUs x 32, 200 epochs (docs/methods.md §1):
# foreground crops of one image pasted on two other images (256x256).
_base_ = [
    '../_base_/models/insloc_r50_fpn.py',
    '../_base_/datasets/imagenet_views.py',
    '../_base_/schedules/sgd_nesterov_coslr-200e.py',
    '../_base_/default_runtime.py',
]
# Box jitter on P5 (query) with the official AnchorAugHead rule
# (configs/insloc/README.md): stride-16 anchors, sizes 32-256, five ratios,
# centres on the grid points, unclipped, IoU > 0.5, NMS(0.7) on random
# scores, one survivor at random; no anchor above 0.5: draw among the 4000
# best. nms_thr=None / clip_anchors=True / fallback='keep' are our switches.
model = dict(
    jitter_levels=(3, ),
    jitter_cfg=dict(
        _delete_=True, stride=16, sizes=(32, 64, 128, 256),
        ratios=(0.5, 0.75, 1.0, 1.5, 2.0), iou_thr=0.5, center_offset=0.0,
        nms_thr=0.7, clip_anchors=False, fallback='top_iou',
        fallback_topk=4000))
view_pipeline = _base_.color_augs + _base_.flip_pack
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(**_base_.imagenet_dataset,
                     pipeline=[_base_.load_image]),
        pipeline=[
            # official CopyAndPaste: mmcv.imrescale of each crop into a
            # (randint(128, 255), randint(128, 255)) target
            dict(type='InstanceComposite', view_names=('query', 'key'),
                 fg_size=(128, 255), bg_size=256, crop_scale=(0.2, 1.0),
                 ratio=(0.5, 2.0), fg_resize='imrescale'),
            dict(type='PackViews',
                 pipelines=dict(query=view_pipeline, key=view_pipeline)),
        ]))
