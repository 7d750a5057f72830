# MoCo v2 on the built-in toy set: ResNet-18, 96 px crops, K=1024, 300
# steps on one CPU process (< 2 min). Checks that pretraining learns: the
# log shows `contrast_chance` = ln(1+K) beside `loss_contrast`, which must
# fall below it (METHODS.md §6b).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/toy_mocov2.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=1024,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))

max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(window_size=25, by_epoch=False)
