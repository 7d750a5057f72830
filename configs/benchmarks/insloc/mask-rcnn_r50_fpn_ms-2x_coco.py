# InsLoc (FPN) -> Mask R-CNN R50-FPN 2x (COCO), in the papers' protocol
# (../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-2x_coco.py).
# Loads InsLoc (FPN)'s transfer set (mmselfdet/export/transfer.py).
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/insloc_r50_fpn_8xb32-coslr-200e_in1k/epoch_200.pth \
#       work_dirs/exports/insloc_r50_fpn.pth --strict --downstream-config \
#       configs/benchmarks/insloc/mask-rcnn_r50_fpn_ms-2x_coco.py
_base_ = '../mask-rcnn_r50-syncbn_fpn-4conv1fc_ms-2x_coco.py'
pretrain = dict(
    method='InsLoc',
    config='configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py',
    parts=None)
load_from = 'work_dirs/exports/insloc_r50_fpn.pth'
# InsLoc's head: the 4conv1fc head with one more norm after fc1
model = dict(
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCExtraNormBBoxHead')))
