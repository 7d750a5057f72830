# MoCo v2 R50 on ImageNet-1k with the pixel augmentations on the GPU batch
# (issue 18): the CPU workers decode, crop and pack only. Everything else as
# the base config.
_base_ = ['./mocov2_r50_8xb32-coslr-200e_in1k.py']
model = dict(data_preprocessor=dict(gpu_augment=_base_.gpu_augment))
train_dataloader = dict(dataset=dict(pipeline=_base_.gpu_train_pipeline))
