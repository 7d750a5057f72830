# MoCo v2 on ImageNet-1k, 8 GPUs x 32 images, 200 epochs (docs/methods.md §0).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e.py',
    '../_base_/default_runtime.py',
]
# 8 GPUs: SyncBN is not needed with shuffle-BN.
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3),
                     logger=dict(interval=50))
