# Fine-tuning stock mmdet DETR on COCO from a SimDETR-pretrained DETR: the
# whole detector except bbox_head.fc_cls. Export with
#   python tools/export_checkpoint.py work_dirs/simdetr_detr_r50_8xb2-150e_coco/epoch_150.pth \
#       work_dirs/simdetr/detr_exported.pth \
#       --downstream-config configs/simdetr/detr_r50_8xb2-150e_coco-ft.py
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmselfdet'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None))
load_from = 'work_dirs/simdetr/detr_exported.pth'
