# InsLoc (C4) -> Faster R-CNN R50-C4 24k (VOC07+12), in the papers' protocol
# (../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py).
# Loads InsLoc (C4)'s transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/insloc_r50_c4_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/insloc_r50_c4.pth --strict --downstream-config \
#       configs/benchmarks/insloc/faster-rcnn_r50_c4_ms-24k_voc0712.py
_base_ = '../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py'
pretrain = dict(
    method='InsLoc',
    config='configs/insloc/insloc_r50_c4_8xb32-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/insloc_r50_c4.pth'
