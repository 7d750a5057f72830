# Two-stage downstream detector of the toy benchmark for object-level
# methods (InsLoc, SoCo, end-to-end SoCo): stock mmdet Faster R-CNN with a
# ResNet-18 + FPN(64, BN) and the 4conv1fc box head (64-ch convs with BN,
# fc 256), the toy-sized twin of the paper protocol's Mask R-CNN
# 4conv1fc (docs/methods.md §7). The whole transfer set of those methods
# (backbone + FPN + head convs + fc1) lands here by name; the random row
# uses the same detector without `load_from`.
# Toy objects are 13-64 px in 128 px images: RPN anchors start at 16 px
# (scale 4 at stride 4). Same data, norm and evaluation as the RetinaNet
# toy benchmark (retinanet_r18_fpn_1xb8-12e_toy.py); the toy benchmark
# (tools/benchmarks/toy_table.py) sets the schedule per split.
# (one base: mmengine refuses a key set by two bases, so the model is
# written out here; the values not named in the comment above are mmdet's
# faster-rcnn_r50_fpn.py defaults.)
_base_ = './retinanet_r18_fpn_1xb8-12e_toy.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    _delete_=True,
    type='FasterRCNN',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=dict(type='ResNet', depth=18, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  init_cfg=None),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=64,
              num_outs=5, norm_cfg=norm_cfg),
    rpn_head=dict(
        type='RPNHead', in_channels=64, feat_channels=64,
        anchor_generator=dict(type='AnchorGenerator', scales=[4],
                              ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=64, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', in_channels=64,
            conv_out_channels=64, fc_out_channels=256, roi_feat_size=7,
            num_classes=5, norm_cfg=norm_cfg,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                            target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                          neg_iou_thr=0.3, min_pos_iou=0.3,
                          match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5,
                         neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000,
                          nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        rcnn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25,
                         neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1, debug=False)),
    # detections kept down to score 0.001, as in the RetinaNet toy config
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000,
                 nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100)))
