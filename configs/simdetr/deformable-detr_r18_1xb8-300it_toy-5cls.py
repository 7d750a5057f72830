# Downstream fine-tuning on the toy data: the tiny Deformable DETR of
# configs/simdetr/_base_/ on the 5 toy classes (`train` split), evaluated
# with CocoMetric on `val`. Random init by default; from SimDETR
# pretraining with
#   python tools/export_checkpoint.py PRETRAIN.pth simdetr.pth \
#       --downstream-config configs/simdetr/deformable-detr_r18_1xb8-300it_toy-5cls.py
#   python tools/train.py configs/simdetr/deformable-detr_r18_1xb8-300it_toy-5cls.py \
#       --cfg-options load_from=simdetr.pth
# (the export holds the whole detector except bbox_head.cls_branches, which
# start afresh for the 5 classes).
_base_ = './_base_/deformable-detr_r18_toy.py'

metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring', 'cross'),
    palette=[(230, 25, 75), (0, 130, 200), (255, 195, 0), (60, 180, 75),
             (145, 30, 180)])
data_root = 'data/toy/'
model = dict(bbox_head=dict(num_classes=5),
             test_cfg=dict(max_per_img=30))
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train.json',
                 data_prefix=dict(img='train/')))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/val.json',
                 data_prefix=dict(img='val/'), test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

max_iters = 300
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
