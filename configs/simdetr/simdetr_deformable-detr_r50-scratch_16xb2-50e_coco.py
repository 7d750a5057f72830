# SimDETR "from scratch": as simdetr_deformable-detr_r50_16xb2-50e_coco.py,
# but the backbone starts from random init too, so nothing is frozen and BN
# layers train (frozen random statistics would be meaningless).
_base_ = './simdetr_deformable-detr_r50_16xb2-50e_coco.py'

model = dict(
    backbone=dict(frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False,
                  init_cfg=None))
