# DETR-style pretraining (docs/methods.md §6: a stock Deformable DETR trained on
# pseudo-labels) -> Deformable DETR R50 on COCO, protocol of
# ../deformable-detr_r50-syncbn_16xb2-50e_coco.py. Loads the whole pretrained
# detector except its classification layers (bbox_head.cls_branches), which
# are re-initialised for the 80 COCO classes. Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/simdetr_deformable-detr_r50_16xb2-50e_coco/epoch_50.pth \
#       work_dirs/exports/deformable-detr_pretrain.pth --strict \
#       --downstream-config \
#       configs/benchmarks/detr-pretrain/deformable-detr_r50_16xb2-50e_coco.py
_base_ = '../deformable-detr_r50-syncbn_16xb2-50e_coco.py'
pretrain = dict(
    method='DeformableDETR',
    config='configs/simdetr/simdetr_deformable-detr_r50_16xb2-50e_coco.py',
    parts=None)
load_from = 'work_dirs/exports/deformable-detr_pretrain.pth'
