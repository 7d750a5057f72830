# InsLoc (C4) -> Mask R-CNN R50-C4 1x (COCO), in the papers' protocol
# (../mask-rcnn_r50-syncbn_c4_ms-1x_coco.py).
# Loads InsLoc (C4)'s transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/insloc_r50_c4_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/insloc_r50_c4.pth --strict --downstream-config \
#       configs/benchmarks/insloc/mask-rcnn_r50_c4_ms-1x_coco.py
_base_ = '../mask-rcnn_r50-syncbn_c4_ms-1x_coco.py'
pretrain = dict(
    method='InsLoc',
    config='configs/insloc/insloc_r50_c4_8xb32-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/insloc_r50_c4.pth'
