# End-to-end SoCo, 400 epochs.
_base_ = ['./soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=390, by_epoch=True, begin=10,
         end=400)
]
train_cfg = dict(max_epochs=400)
