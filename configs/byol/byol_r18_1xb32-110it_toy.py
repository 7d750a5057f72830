# BYOL on the built-in toy set (CPU, ~2 min): ResNet-18, 64 px two-view
# crops, projector/predictor 512-512-128, SGD lr 0.06, 110 steps, target
# momentum 0.01 -> 0 (tau 0.99 -> 1) because the run is short.
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/toy_mocov2.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128),
    head=dict(predictor=dict(in_channels=128, hid_channels=512,
                             out_channels=128)))

# 110 steps keep the run under 2 minutes on 2 CPU cores
max_iters = 110
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
