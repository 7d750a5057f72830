# MoCo v2 on the built-in toy set, one CPU process in about 2 minutes:
# ResNet-18, 64 px crops of the 128 px scenes, batch 32, 180 steps.
# Toy-only changes to the paper recipe (docs/methods.md §0), all because the
# run is ~1000x shorter: K=256 (the toy set has 1000 images; a larger queue
# would hold several keys of the same image), m=0.99 (momentum=0.01; with
# m=0.999 the key encoder would still be 84 % random init after 180 steps),
# lr 0.06. The log shows `contrast_chance` = ln(1+K) beside `loss_contrast`:
# a run that never falls below it has not learned (docs/methods.md §6b).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/toy_mocov2.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    queue_len=256,
    momentum=0.01,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))

max_iters = 180
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
