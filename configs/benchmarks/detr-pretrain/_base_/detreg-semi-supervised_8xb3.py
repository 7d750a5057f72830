# DETReg's semi-supervised low-data fine-tuning protocol (its
# configs/DETReg_fine_tune_{1,2,5,10}pct_coco.sh, run as README says on
# 8 GPUs x --batch_size 3), counted in iterations: the Deformable DETR
# fine-tuning of ../deformable-detr_r50_16xb2-50e_coco.py on a fixed COCO
# split of tools/make_low_data_splits.py, 3 images per GPU on 8 GPUs (24 per
# iteration), constant learning rate (DETReg's StepLR has lr_drop = epochs,
# so it never drops within the run). Each leaf
# (deformable-detr_r50_8xb3-<E>e_coco-<p>pct.py) sets the split and
# max_iters = epochs x iterations per epoch of the split; the derivation is
# in configs/simdetr/README.md ("Low-data fine-tuning") and docs/transfer.md.
_base_ = '../deformable-detr_r50_16xb2-50e_coco.py'

train_dataloader = dict(
    batch_size=3,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
# the leaf sets max_iters and val_interval (= max_iters / 10)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=None,
                 val_interval=None)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
