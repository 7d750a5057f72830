# BYOL -> Faster R-CNN R50-C4 24k (VOC07+12), in the papers' protocol
# (../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py).
# Loads BYOL's transfer set (mmselfdet/export/transfer.py).
# C4: the exporter puts the pretrained res5 into the RoI head.
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/byol_r50_16xb256-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/byol_r50.pth --strict --downstream-config \
#       configs/benchmarks/byol/faster-rcnn_r50_c4_ms-24k_voc0712.py
_base_ = '../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py'
pretrain = dict(
    method='BYOL',
    config='configs/byol/byol_r50_16xb256-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/byol_r50.pth'
