# BYOL with the MoCo v2 views (symmetric: crop scale 0.2-1, colour jitter
# 0.4/0.4/0.4/0.1, blur p 0.5, no solarization) instead of BYOL's
# asymmetric augmentations: our former default, kept as a named variant.
_base_ = ['./byol_r50_16xb256-coslr-200e_in1k.py']
train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline))
