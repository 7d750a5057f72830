# End-to-end SoCo (heat-map proposals) ->
# RetinaNet R50-FPN 1x (COCO), in the papers' protocol
# (../retinanet_r50-syncbn_fpn_ms-1x_coco.py).
# Loads the backbone only (RetinaNet has no RoI head and its FPN starts at C3).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/soco-e2e_r50_fpn_8xb32-lars-100e_in1k/epoch_100.pth \
#       work_dirs/exports/soco-e2e_r50_fpn_backbone.pth --strict --downstream-config \
#       configs/benchmarks/soco-e2e/retinanet_r50_fpn_ms-1x_coco.py
_base_ = '../retinanet_r50-syncbn_fpn_ms-1x_coco.py'
pretrain = dict(
    method='SoCo',
    config='configs/soco/soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
    parts=['backbone.'])
load_from = 'work_dirs/exports/soco-e2e_r50_fpn_backbone.pth'
