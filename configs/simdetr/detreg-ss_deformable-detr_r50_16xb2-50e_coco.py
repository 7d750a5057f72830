# DETReg-style baseline (box localisation part only): the SimDETR Deformable
# DETR config (same detector, schedule and backbone init) trained
# class-agnostically on the top-30 selective-search boxes of every image,
# without self-training. DETReg's second target, regressing the SwAV
# embedding of each box, is not part of this baseline (see
# configs/simdetr/README.md). Inputs:
#   python tools/generate_proposals.py ... --out data/coco/proposals/ss_train2017.json
#   python tools/detr_pretrain/proposals_to_coco.py data/coco/proposals/ss_train2017.json \
#       --topk 30 --out data/coco/simdetr/detreg_ss_top30.json
_base_ = './simdetr_deformable-detr_r50_16xb2-50e_coco.py'

model = dict(bbox_head=dict(num_classes=1))
train_dataloader = dict(
    dataset=dict(metainfo=dict(classes=('object', )),
                 ann_file='simdetr/detreg_ss_top30.json'))
custom_hooks = []
