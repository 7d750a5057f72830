# InsLoc: SGD nesterov lr 0.03 for 256 images (8 GPUs x 32), momentum 0.9,
# wd 1e-4, cosine, 200 epochs. A leaf config with another total batch sets
# lr = 0.03 x batch / 256 and auto_scale_lr.base_batch_size = batch
# (docs/architecture.md, "Learning rate and batch size").
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4,
                   nesterov=True))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# the lr above is for 256 images; --auto-scale-lr rescales other batches
auto_scale_lr = dict(enable=False, base_batch_size=256)
