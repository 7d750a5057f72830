# The downstream protocol of the detection-pretraining papers (docs/methods.md §7),
# shared by every benchmark config: SyncBN in the backbone, the FPN and the
# 4conv heads, no frozen stages, BN in train mode (norm_eval=False), RGB +
# ImageNet mean/std, multi-scale training with the short side in 640-800.
# The backbone starts from the pretraining export (load_from / init_cfg),
# never from mmdet's ImageNet weights (init_cfg=None).
# mmengine's Runner reverts SyncBN to BN when training is not distributed.
sync_bn = dict(type='SyncBN', requires_grad=True)
backbone_protocol = dict(frozen_stages=-1, norm_eval=False, norm_cfg=sync_bn,
                         style='pytorch', init_cfg=None)
rgb_preprocessor = dict(mean=[123.675, 116.28, 103.53],
                        std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
ms_scales = [(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768),
             (1333, 800)]
ms_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
ms_train_pipeline_box = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# Faster/Mask R-CNN C4 (mmdet's caffe-style C4 models, switched to the
# protocol): pytorch-style ResNet res2-res4 + res5 as the RoI head, SyncBN.
c4_model = dict(
    data_preprocessor=rgb_preprocessor,
    backbone=backbone_protocol,
    roi_head=dict(shared_head=dict(style='pytorch', norm_cfg=sync_bn,
                                   norm_eval=False, init_cfg=None)))
