# SimDETR-style pretraining (docs/methods.md §6) of stock mmdet Deformable DETR on
# COCO train2017 without labels. Only the dataset (pseudo-labels of stages
# A+B) and num_classes differ from mmdet's config, plus the backbone's
# initialisation from a self-supervised checkpoint and the self-training
# loop (stage D, SelfTrainingEpochLoop). Inputs, made by:
#   python tools/detr_pretrain/make_proposals.py data/coco/annotations/instances_train2017.json \
#       --img-root data/coco/train2017 --checkpoint $BACKBONE --arch resnet50 \
#       --out data/coco/simdetr/proposals.json
#   python tools/detr_pretrain/cluster_pseudo_labels.py data/coco/simdetr/proposals.json \
#       --num-classes 256 --max-per-img 30 \
#       --out data/coco/simdetr/pseudo_labels_k256.json
# (--max-per-img: round-0 labels are the best 30 boxes per image, DETReg's
# top 30; 0 keeps every stage-A box)
# Backbone: `backbone_checkpoint` (an mmselfdet export or any checkpoint
# with `backbone.*` keys, e.g. MoCo v2 / SwAV R50). Switches: see
# configs/simdetr/README.md.
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

num_classes = 256  # [ours] K of stage B
metainfo = dict(classes=tuple(f'cluster_{k:03d}' for k in range(num_classes)))
data_root = 'data/coco/'
ann_file = 'simdetr/pseudo_labels_k256.json'
backbone_checkpoint = 'work_dirs/mocov2_r50/exported.pth'

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint=backbone_checkpoint)),
    bbox_head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file=ann_file,
                 data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=False)))
# pretraining has no labelled evaluation
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# Stage D [ours]: one relabelling round half-way (epoch 25 of 50); the best
# 30 predictions per image by maximum class score (threshold rule:
# selection='threshold', score_thr=0.3).
train_cfg = dict(
    type='SelfTrainingEpochLoop', interval=25, num_rounds=2,
    selection='topk', nms_iou=0.5, max_per_img=30, recluster=False,
    label_dataloader=dict(batch_size=8, num_workers=4, dataset=dict(
        pipeline={{_base_.test_pipeline}})))
# a non-finite loss or gradient stops the run (policy='skip' skips the
# step) instead of being applied: mmselfdet's guard around mmdet's wrapper
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
