# BYOL, ResNet-50: projector 2048-4096-256 and predictor 256-4096-256 with
# BN, loss 2-2cos symmetric, target EMA tau 0.996 -> 1 on a cosine
# (mmengine momentum 0.004 -> 0; the hook gives the schedule its length).
model = dict(
    type='BYOL',
    momentum=0.004,
    end_momentum=0.0,
    data_preprocessor=dict(
        type='MultiViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='ResNet', depth=50, num_stages=4, out_indices=(3, ),
        style='pytorch', frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
        zero_init_residual=False),
    neck=dict(type='MLPProjector', in_channels=2048, hid_channels=4096,
              out_channels=256, norm_cfg=dict(type='BN1d')),
    head=dict(type='BYOLHead', predictor=dict(
        type='MLPProjector', in_channels=256, hid_channels=4096,
        out_channels=256, norm_cfg=dict(type='BN1d'), with_avg_pool=False)))
custom_hooks = [dict(type='MomentumScheduleHook')]
