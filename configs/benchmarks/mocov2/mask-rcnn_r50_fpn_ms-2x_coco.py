# MoCo v2 -> Mask R-CNN R50-FPN 2x (COCO), in the papers' protocol
# (../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-2x_coco.py).
# Loads MoCo v2's transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/mocov2_r50_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/mocov2_r50.pth --strict --downstream-config \
#       configs/benchmarks/mocov2/mask-rcnn_r50_fpn_ms-2x_coco.py
_base_ = '../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-2x_coco.py'
pretrain = dict(
    method='MoCoV2',
    config='configs/mocov2/mocov2_r50_8xb32-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/mocov2_r50.pth'
