# The DETReg-style baseline with a trained backbone (the switch of
# detreg-ss_deformable-detr_r50_16xb2-50e_coco.py, which freezes it as DETReg
# does): DETReg's own train_backbone setting (lr_backbone > 0), i.e. layer2-4
# train at 0.1x the learning rate, the stem and layer1 stay frozen and every
# BN keeps the checkpoint's statistics and affine (FrozenBatchNorm2d) -- the
# backbone setting of the SimDETR configs.
_base_ = './detreg-ss_deformable-detr_r50_16xb2-50e_coco.py'

model = dict(backbone=dict(frozen_stages=1))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1))))
