# BYOL's LARS recipe for 256 images (8 GPUs x 32): lr 0.3 per 256 images
# (4.8 at batch 4096), wd 1e-6, 10 warm-up epochs then cosine, 200 epochs.
# Every 1-D parameter (biases, BN / BN1d weights, incl. the projector's and
# predictor's) takes no weight decay and no LARS trust ratio
# (LARSOptimWrapperConstructor, exclude_1d). A leaf config with another
# total batch sets lr = 0.3 x batch / 256 and auto_scale_lr.base_batch_size
# = batch (docs/architecture.md, "Learning rate and batch size").
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    constructor='LARSOptimWrapperConstructor',
    optimizer=dict(type='LARS', lr=0.3, momentum=0.9, weight_decay=1e-6),
    paramwise_cfg=dict(exclude_1d=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=190, by_epoch=True, begin=10,
         end=200)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# the lr above is for 256 images; --auto-scale-lr rescales other batches
auto_scale_lr = dict(enable=False, base_batch_size=256)
