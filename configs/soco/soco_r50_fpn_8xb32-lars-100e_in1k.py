# SoCo on ImageNet-1k with offline selective-search proposals (100 epochs,
# LARS lr 1.0 x batch / 256, wd 1e-5, 10 warm-up epochs, fp16 AMP).
# Proposals: tools/generate_proposals.py data/imagenet/train
#   --ann-file data/imagenet/meta/train.txt --out
#   data/imagenet/proposals/ss_fast_train.json --mode fast
_base_ = [
    '../_base_/models/soco_r50_fpn.py',
    '../_base_/datasets/imagenet_views.py',
    '../_base_/default_runtime.py',
]
max_epochs = 100
# BYOL-style asymmetric augmentations
v1_pipeline = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
         hue=0.1, prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.299)),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, prob=1.0),
] + _base_.flip_pack
v2_augs = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
         hue=0.1, prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.299)),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, prob=0.1),
    dict(type='Solarize', prob=0.2, min_mag=128.0, max_mag=128.0),
]
# official V2 / V3 cutout in box (p 0.5, 10-30 % of the box area)
v2_pipeline = v2_augs + [
    dict(type='RandomCutoutInBoxes', prob=0.5, ratio=(0.1, 0.3))
] + _base_.flip_pack
train_dataloader = dict(dataset=dict(
    proposal_file='proposals/ss_fast_train.json',
    proposal_filter=dict(min_size=32, aspect_range=(1 / 3, 3),
                         area_ratio_range=(0.3, 0.8)),
    missing_proposals='whole_image',
    pipeline=[
        _base_.load_image,
        dict(type='LoadProposals'),
        dict(type='SoCoViews', num_boxes=4, box_source='proposals',
             v1_size=224, v2_size=224, v3_size=112, crop_scale=(0.5, 1.0)),
        dict(type='RandomBoxJitter', mode='relative', prob=0.5,
             jitter_ratio=0.1, views=['v1']),
        dict(type='PackViews', pipelines=dict(
            v1=v1_pipeline, v2=v2_pipeline, v3=v2_pipeline)),
    ]))
# lr for the declared batch 256 (8 x 32): 1.0 x 256 / 256; every 1-D
# parameter (biases, BN / BN1d weights) takes no weight decay and no trust
# ratio (LARSOptimWrapperConstructor, exclude_1d)
optim_wrapper = dict(
    type='NonFiniteGuardAmpOptimWrapper',
    loss_scale='dynamic',
    constructor='LARSOptimWrapperConstructor',
    optimizer=dict(type='LARS', lr=1.0, momentum=0.9, weight_decay=1e-5),
    paramwise_cfg=dict(exclude_1d=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True,
         begin=10, end=max_epochs)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# --auto-scale-lr rescales the lr for another total batch
auto_scale_lr = dict(enable=False, base_batch_size=256)
