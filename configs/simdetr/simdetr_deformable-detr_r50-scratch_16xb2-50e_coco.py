# SimDETR "from scratch": as simdetr_deformable-detr_r50_16xb2-50e_coco.py,
# but nothing starts from pretrained weights, neither the detector nor the
# stage-A boxes (configs/simdetr/README.md, "From scratch"):
# * backbone: random init, nothing frozen, SyncBN in train mode (2 images
#   per GPU are too few for per-GPU batch statistics; mmengine's Runner
#   reverts SyncBN to BN when training is not distributed), and the full
#   learning rate (lr_mult 1.0: mmdet's 0.1 is meant for an ImageNet
#   backbone and left a random-init one nearly untrained in our toy study);
# * labels: stage A on the features of a randomly initialised ResNet-50
#   (make_proposals.py without --checkpoint, seeded), then stage B:
#     python tools/detr_pretrain/make_proposals.py {stage_a_args}
#     python tools/detr_pretrain/cluster_pseudo_labels.py {stage_b_args}
#   with the argument lists below (tested to need no checkpoint and to
#   write this config's ann_file).
_base_ = './simdetr_deformable-detr_r50_16xb2-50e_coco.py'

backbone_checkpoint = None
stage_a_args = [
    'data/coco/annotations/instances_train2017.json',
    '--img-root', 'data/coco/train2017', '--arch', 'resnet50', '--seed', '0',
    '--out', 'data/coco/simdetr/scratch/proposals.json'
]
stage_b_args = [
    'data/coco/simdetr/scratch/proposals.json', '--num-classes', '256',
    '--max-per-img', '30',  # round-0 labels: best 30 boxes (DETReg)
    '--out', 'data/coco/simdetr/scratch/pseudo_labels_k256.json'
]

model = dict(
    backbone=dict(frozen_stages=-1,
                  norm_cfg=dict(type='SyncBN', requires_grad=True),
                  norm_eval=False,
                  init_cfg=None))
train_dataloader = dict(
    dataset=dict(ann_file='simdetr/scratch/pseudo_labels_k256.json'))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
