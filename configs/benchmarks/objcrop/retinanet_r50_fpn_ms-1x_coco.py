# Object-aware crops (MoCo v2) ->
# RetinaNet R50-FPN 1x (COCO), in the papers' protocol
# (../retinanet_r50-syncbn_fpn_ms-1x_coco.py).
# Loads MoCo v2's transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/mocov2-objcrop_r50_8xb32-coslr-200e_coco/epoch_200.pth \
#       work_dirs/exports/mocov2-objcrop_r50.pth --strict --downstream-config \
#       configs/benchmarks/objcrop/retinanet_r50_fpn_ms-1x_coco.py
_base_ = '../retinanet_r50-syncbn_fpn_ms-1x_coco.py'
pretrain = dict(
    method='MoCoV2',
    config='configs/objcrop/mocov2-objcrop_r50_8xb32-coslr-200e_coco.py',
    parts=None)
load_from = 'work_dirs/exports/mocov2-objcrop_r50.pth'
