# DetCo (docs/methods.md §3): res2-res5 pooled, per-stage global and local
# (9 concatenated patches) MLPs -> 128, gg / ll / lg losses, separate global
# and local queues, stage weights 0.1 / 0.4 / 0.7 / 1.0.
model = dict(
    type='DetCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    stage_weights=(0.1, 0.4, 0.7, 1.0),
    views=('view1', 'view2', 'local1', 'local2'),
    data_preprocessor=dict(
        type='MultiViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
        style='pytorch', frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
        zero_init_residual=False),
    neck=dict(type='MultiStageProjector', in_channels=(256, 512, 1024, 2048),
              hid_channels=2048, out_channels=128, grid=3),
    head=dict(type='QueueContrastiveHead', temperature=0.2))
