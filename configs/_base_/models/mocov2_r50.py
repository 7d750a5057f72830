# MoCo v2, ResNet-50 (docs/methods.md §0): MLP 2048-2048-128, K=65536, T=0.2,
# m=0.999 (mmengine EMA momentum 0.001), shuffle-BN.
model = dict(
    type='MoCoV2',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    shuffle_bn=True,
    data_preprocessor=dict(
        type='MultiViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        zero_init_residual=False),
    neck=dict(type='MLPProjector', in_channels=2048, hid_channels=2048,
              out_channels=128, with_avg_pool=True),
    head=dict(type='QueueContrastiveHead', temperature=0.2))
