# DETR-style pretraining (docs/methods.md §6, configs/simdetr/) with a stock DETR ->
# DETR R50 on COCO,
# protocol of ../detr_r50-syncbn_8xb2-150e_coco.py. Loads the whole pretrained
# detector except its classification layer (bbox_head.fc_cls). Export first:
#   python tools/export_checkpoint.py \
#       work_dirs/simdetr_detr_r50_8xb2-150e_coco/epoch_150.pth \
#       work_dirs/exports/detr_pretrain.pth --strict \
#       --downstream-config configs/benchmarks/detr-pretrain/detr_r50_8xb2-150e_coco.py
_base_ = '../detr_r50-syncbn_8xb2-150e_coco.py'
pretrain = dict(
    method='DETR',
    config='configs/simdetr/simdetr_detr_r50_8xb2-150e_coco.py',
    parts=None)
load_from = 'work_dirs/exports/detr_pretrain.pth'
