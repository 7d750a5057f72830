# Object-aware crops (MoCo v2) ->
# Faster R-CNN R50-C4 24k (VOC07+12), in the papers' protocol
# (../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py).
# Loads MoCo v2's transfer set (mmselfdet/export/transfer.py).
# C4: the exporter puts the pretrained res5 into the RoI head.
# Export it first:
#   python tools/export_checkpoint.py \
#       work_dirs/mocov2-objcrop_r50_8xb32-coslr-200e_coco/epoch_200.pth \
#       work_dirs/exports/mocov2-objcrop_r50.pth --strict --downstream-config \
#       configs/benchmarks/objcrop/faster-rcnn_r50_c4_ms-24k_voc0712.py
_base_ = '../faster-rcnn_r50-syncbn_c4_ms-24k_voc0712.py'
pretrain = dict(
    method='MoCoV2',
    config='configs/objcrop/mocov2-objcrop_r50_8xb32-coslr-200e_coco.py',
    parts=None)
load_from = 'work_dirs/exports/mocov2-objcrop_r50.pth'
