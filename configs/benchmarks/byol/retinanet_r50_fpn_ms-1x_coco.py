# BYOL -> RetinaNet R50-FPN 1x (COCO), in the papers' protocol
# (../retinanet_r50-syncbn_fpn_ms-1x_coco.py).
# Loads BYOL's transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/byol_r50_16xb256-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/byol_r50.pth --strict --downstream-config \
#       configs/benchmarks/byol/retinanet_r50_fpn_ms-1x_coco.py
_base_ = '../retinanet_r50-syncbn_fpn_ms-1x_coco.py'
pretrain = dict(
    method='BYOL',
    config='configs/byol/byol_r50_16xb256-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/byol_r50.pth'
