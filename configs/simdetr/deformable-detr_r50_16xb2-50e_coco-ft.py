# Fine-tuning stock mmdet Deformable DETR on COCO (80 classes) from a
# SimDETR / DETReg-style pretrained detector: the whole detector except the
# classification layers (bbox_head.cls_branches, re-initialised for the
# downstream classes). Export first:
#   python tools/export_checkpoint.py work_dirs/simdetr_deformable-detr_r50_16xb2-50e_coco/epoch_50.pth \
#       work_dirs/simdetr/deformable-detr_exported.pth \
#       --downstream-config configs/simdetr/deformable-detr_r50_16xb2-50e_coco-ft.py
# Low-data protocol (1/2/5/10 %, DETReg's semi-supervised schedule):
# configs/benchmarks/detr-pretrain/deformable-detr_r50_8xb3-*e_coco-*pct.py.
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None))  # everything comes from load_from
load_from = 'work_dirs/simdetr/deformable-detr_exported.pth'
