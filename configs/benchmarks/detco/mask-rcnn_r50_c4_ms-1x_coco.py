# DetCo -> Mask R-CNN R50-C4 1x (COCO), in the papers' protocol
# (../mask-rcnn_r50-syncbn_c4_ms-1x_coco.py).
# Loads DetCo's transfer set (mmselfdet/export/transfer.py).
# C4: the exporter puts the pretrained res5 into the RoI head.
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/detco_r50_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/detco_r50.pth --strict --downstream-config \
#       configs/benchmarks/detco/mask-rcnn_r50_c4_ms-1x_coco.py
_base_ = '../mask-rcnn_r50-syncbn_c4_ms-1x_coco.py'
pretrain = dict(
    method='DetCo',
    config='configs/detco/detco_r50_8xb32-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/detco_r50.pth'
