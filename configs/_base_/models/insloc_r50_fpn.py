# InsLoc FPN (docs/methods.md §1): R50 + FPN (P2-P5, BN) + RoIAlign 7x7 of the
# box on every level + one shared 4conv-2fc head -> 128-d, one MoCo loss and
# one queue per level (K=65536, T=0.2, m=0.999), anchor jitter on P5 (query).
model = dict(
    type='InsLoc',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,
    jitter_levels=(3, ),
    # the official AnchorAugHead rule (configs/insloc/README.md)
    jitter_cfg=dict(stride=16, sizes=(32, 64, 128, 256),
                    ratios=(0.5, 0.75, 1.0, 1.5, 2.0), iou_thr=0.5,
                    center_offset=0.0, nms_thr=0.7, clip_anchors=False,
                    fallback='top_iou', fallback_topk=4000),
    views=('query', 'key'),
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
    roi_pooler=dict(type='MultiLevelRoIPooler',
                    featmap_strides=(4, 8, 16, 32), out_size=7, mode='all'),
    box_embedder=dict(type='ConvFCBoxEmbedder', in_channels=256, roi_size=7,
                      conv_channels=256, num_convs=4, fc_channels=1024,
                      num_fcs=2, out_channels=128,
                      norm_cfg=dict(type='BN', requires_grad=True)),
    head=dict(type='QueueContrastiveHead', temperature=0.2))
