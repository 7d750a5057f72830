# BYOL on ImageNet-1k, 16 GPUs x 256 (batch 4096), LARS, 200 epochs.
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/lars_coslr-200e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
