# MoCo v2 on the built-in toy set, one CPU process in about 2 minutes:
# ResNet-18, 64 px crops of the 128 px scenes, batch 32, 180 steps.
# Toy-only changes to the paper recipe (METHODS.md §0), all because the
# run is ~1000x shorter: K=256 (the toy set has 1000 images; a larger queue
# would hold several keys of the same image), m=0.99 (momentum=0.01; with
# m=0.999 the key encoder would still be 84 % random init after 180 steps),
# lr 0.06. The log shows `contrast_chance` = ln(1+K) beside `loss_contrast`:
# a run that never falls below it has not learned (METHODS.md §6b).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/toy_mocov2.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=256,
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))

max_iters = 180
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
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(window_size=20, by_epoch=False)
