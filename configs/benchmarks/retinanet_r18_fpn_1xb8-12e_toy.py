# Downstream benchmark on the built-in toy set: stock mmdet RetinaNet R18-FPN,
# trained on the toy `train` split, evaluated with CocoMetric on `val`.
#
# Init:  random by default (backbone init_cfg=None: no ImageNet weights);
#        a pretrained model is loaded with
#        `--cfg-options load_from=work_dirs/.../exported.pth`
#        (tools/export_checkpoint.py writes mmdet key names, so every
#        transferred part - backbone, or backbone+FPN+head - lands).
# Protocol (docs/methods.md §7, scaled down): frozen_stages=-1, norm_eval=False,
# RGB + ImageNet mean/std. One CPU process, so plain BN instead of SyncBN.
# Toy objects are 13-64 px in 128 px images: the anchors start at 16 px
# (octave_base_scale=2) instead of 32 px. The head uses GroupNorm: training
# from random init for ~300 steps needs normalised heads (with mmdet's
# un-normalised head the classification loss did not move from its prior in
# 12 toy epochs and no detection was produced; He et al. 2019 train
# detectors from scratch with GN/SyncBN for the same reason). Both the
# pretrained and the random-init rows use this same detector. Evaluation
# keeps detections down to score 0.001 (COCO AP ranks them; mmdet's 0.05
# only hides low-confidence boxes of a briefly trained detector).
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

data_root = 'data/toy/'
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring', 'cross'),
    palette=[(230, 25, 75), (0, 130, 200), (255, 195, 0), (60, 180, 75),
             (145, 30, 180)])
img_scale = (128, 128)

model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    bbox_head=dict(
        num_classes=5,
        anchor_generator=dict(octave_base_scale=2),
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
    test_cfg=dict(score_thr=0.001))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric', ann_file=data_root + 'annotations/val.json',
    metric='bbox', format_only=False)
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1))
auto_scale_lr = dict(enable=False, base_batch_size=16)
randomness = dict(seed=0)
