# InsLoc (FPN), 400 epochs.
_base_ = ['./insloc_r50_fpn_8xb32-coslr-200e_in1k.py']
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=400, by_epoch=True, begin=0, end=400)
]
train_cfg = dict(max_epochs=400)
