# DETReg-style baseline (box localisation part only): stock Deformable DETR
# trained class-agnostically on the top-30 selective-search boxes of every
# image, same schedule and backbone init as the SimDETR config. DETReg's
# second target, regressing the SwAV embedding of each box, is not part of
# this baseline (see configs/simdetr/README.md). Inputs:
#   python tools/generate_proposals.py ... --out data/coco/proposals/ss_train2017.json
#   python tools/detr_pretrain/proposals_to_coco.py data/coco/proposals/ss_train2017.json \
#       --topk 30 --out data/coco/simdetr/detreg_ss_top30.json
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

metainfo = dict(classes=('object', ))
data_root = 'data/coco/'
backbone_checkpoint = 'work_dirs/mocov2_r50/exported.pth'

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint=backbone_checkpoint)),
    bbox_head=dict(num_classes=1))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='simdetr/detreg_ss_top30.json',
                 data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=False)))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
