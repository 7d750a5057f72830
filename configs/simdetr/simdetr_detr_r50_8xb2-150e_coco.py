# SimDETR-style pretraining of stock mmdet DETR (R50, 150 epochs) on the
# same pseudo-labels as the Deformable DETR config; only the dataset,
# num_classes, the backbone's init and the self-training hook differ from
# mmdet's config.
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
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
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# Stage D: as the Deformable DETR config (best 30 per image by maximum
# class score; selection='threshold', score_thr=0.3 is the switch).
train_cfg = dict(
    type='SelfTrainingEpochLoop', interval=75, num_rounds=2,
    selection='topk', nms_iou=0.5, max_per_img=30, recluster=False,
    label_dataloader=dict(batch_size=8, num_workers=4, dataset=dict(
        pipeline={{_base_.test_pipeline}})))
# a non-finite loss or gradient stops the run (policy='skip' skips the
# step) instead of being applied: mmselfdet's guard around mmdet's wrapper
optim_wrapper = dict(type='NonFiniteGuardOptimWrapper')
