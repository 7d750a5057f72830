# InsLoc (FPN) -> RetinaNet R50-FPN 1x (COCO), in the papers' protocol
# (../retinanet_r50-syncbn_fpn_ms-1x_coco.py).
# Loads the backbone only (RetinaNet has no RoI head and its FPN starts at C3).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/insloc_r50_fpn_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/insloc_r50_fpn_backbone.pth --strict --downstream-config \
#       configs/benchmarks/insloc/retinanet_r50_fpn_ms-1x_coco.py
_base_ = '../retinanet_r50-syncbn_fpn_ms-1x_coco.py'
pretrain = dict(
    method='InsLoc',
    config='configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py',
    parts=['backbone.'])
load_from = 'work_dirs/exports/insloc_r50_fpn_backbone.pth'
