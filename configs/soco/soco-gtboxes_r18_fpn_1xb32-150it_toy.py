# SoCo on the toy set (CPU) with GROUND-TRUTH boxes: the oracle row (a
# proposal source can do no better than the true objects), hence
# `gtboxes` in the name and the quickstart method `soco-gtboxes`.
# ResNet-18 + FPN(64), V1 64 px, V2 64 px, V3 32 px, K=4 ground-truth boxes
# per image (box_source='gt_bboxes'; soco-ss_*_toy.py swaps in selective
# search, soco-e2e_*_toy.py the heat-map proposer), level thresholds scaled
# to 64 px views (12 / 24 / 48), 150 steps, SGD.
_base_ = [
    '../_base_/models/soco_r50_fpn.py',
    '../_base_/datasets/toy_views.py',
    '../_base_/toy_runtime.py',
]
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    roi_pooler=dict(size_thresholds=(12, 24, 48)),
    box_embedder=dict(in_channels=64, conv_channels=64, num_convs=4,
                      fc_channels=256),
    projector=dict(in_channels=256, hid_channels=512, out_channels=128),
    head=dict(predictor=dict(in_channels=128, hid_channels=512,
                             out_channels=128)))
view_pipeline = _base_.color_augs + _base_.flip_pack
# SoCo's cutout in box (p 0.5, 10-30 % of the box area) on V2 / V3 only
cutout_pipeline = _base_.color_augs + [
    dict(type='RandomCutoutInBoxes', prob=0.5, ratio=(0.1, 0.3))
] + _base_.flip_pack
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='SoCoViews', num_boxes=4, box_source='gt_bboxes', v1_size=64,
         v2_size=64, v3_size=32, crop_scale=(0.5, 1.0)),
    dict(type='RandomBoxJitter', mode='relative', prob=0.5, jitter_ratio=0.1,
         views=['v1']),
    dict(type='PackViews', pipelines=dict(
        v1=view_pipeline, v2=cutout_pipeline, v3=cutout_pipeline)),
]))
