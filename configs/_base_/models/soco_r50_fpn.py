# SoCo (docs/methods.md §4): R50 + FPN (P2-P5) + RoIAlign 7x7 aligned on the level
# a box's size selects + 4conv1fc head (FC 1024) + projector 1024-4096-256 +
# predictor 256-4096-256, BYOL loss symmetric over V1<->V2 and V1<->V3,
# target EMA tau 0.99 -> 1 (mmengine momentum 0.01 -> 0).
model = dict(
    type='SoCo',
    momentum=0.01,
    end_momentum=0.0,
    views=('v1', 'v2', 'v3'),
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
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048],
              out_channels=256, num_outs=4,
              norm_cfg=dict(type='BN', requires_grad=True)),
    # sqrt(area) < 48 -> P2, < 96 -> P3, < 192 -> P4, else P5 (224 = view size)
    roi_pooler=dict(type='MultiLevelRoIPooler',
                    featmap_strides=(4, 8, 16, 32), out_size=7, aligned=True,
                    mode='size', size_thresholds=(48, 96, 192)),
    box_embedder=dict(type='ConvFCBoxEmbedder', in_channels=256, roi_size=7,
                      conv_channels=256, num_convs=4, fc_channels=1024,
                      num_fcs=1, out_channels=None,
                      norm_cfg=dict(type='BN', requires_grad=True)),
    projector=dict(type='MLPProjector', in_channels=1024, hid_channels=4096,
                   out_channels=256, norm_cfg=dict(type='BN1d'),
                   with_avg_pool=False),
    head=dict(type='BYOLHead', predictor=dict(
        type='MLPProjector', in_channels=256, hid_channels=4096,
        out_channels=256, norm_cfg=dict(type='BN1d'), with_avg_pool=False)))
custom_hooks = [dict(type='MomentumScheduleHook')]
