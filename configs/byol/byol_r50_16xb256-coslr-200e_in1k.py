# BYOL on ImageNet-1k, 16 GPUs x 256 (batch 4096), LARS, 200 epochs.
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/lars_coslr-200e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
# lr for the declared batch 4096: 0.3 x 4096 / 256
optim_wrapper = dict(optimizer=dict(lr=4.8))
auto_scale_lr = dict(enable=False, base_batch_size=4096)
