# End-to-end SoCo (heat-map proposals) ->
# Mask R-CNN R50-FPN 1x (COCO), in the papers' protocol
# (../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-1x_coco.py).
# Loads SoCo's transfer set (mmselfdet/export/transfer.py; same model type).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/soco-e2e_r50_fpn_8xb32-lars-100e_in1k/epoch_100.pth \
#       work_dirs/exports/soco-e2e_r50_fpn.pth --strict --downstream-config \
#       configs/benchmarks/soco-e2e/mask-rcnn_r50_fpn_ms-1x_coco.py
_base_ = '../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-1x_coco.py'
pretrain = dict(
    method='SoCo',
    config='configs/soco/soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/soco-e2e_r50_fpn.pth'
