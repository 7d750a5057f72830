# DETReg-style baseline (box localisation part only): the SimDETR Deformable
# DETR config (same detector, schedule and backbone init) trained
# class-agnostically on the top-30 selective-search boxes of every image,
# without self-training. DETReg's second target, regressing the SwAV
# embedding of each box, is not part of this baseline (see
# configs/simdetr/README.md). Inputs:
#   python tools/generate_proposals.py ... --out data/coco/proposals/ss_train2017.json
#   python tools/detr_pretrain/proposals_to_coco.py data/coco/proposals/ss_train2017.json \
#       --topk 30 --out data/coco/simdetr/detreg_ss_top30.json
# The backbone is frozen, as DETReg pretrains (--lr_backbone 0 in its
# configs/DETReg_top30_*.sh: no backbone parameter trains, FrozenBatchNorm2d):
# every stage frozen (requires_grad=False, eval mode, so BN statistics stay
# those of the checkpoint) and lr x 0. Switch: the sibling config
# detreg-ss-trainbackbone_deformable-detr_r50_16xb2-50e_coco.py trains it.
_base_ = './simdetr_deformable-detr_r50_16xb2-50e_coco.py'

model = dict(
    backbone=dict(frozen_stages=4,
                  norm_cfg=dict(type='BN', requires_grad=False),
                  norm_eval=True),
    bbox_head=dict(num_classes=1))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.0))))
train_dataloader = dict(
    dataset=dict(metainfo=dict(classes=('object', )),
                 ann_file='simdetr/detreg_ss_top30.json'))
custom_hooks = []
