# BYOL R50 on ImageNet-1k, its asymmetric views (view 1: blur always, no
# solarize; view 2: blur 0.1, solarize 0.2) augmented on the GPU batch
# (issue 18): the CPU workers decode, crop and pack only. Everything else as
# the base config.
_base_ = ['./byol_r50_16xb256-coslr-200e_in1k.py']
_flip = dict(type='RandomFlip', prob=0.5)
byol_gpu_view = [_base_.byol_crop] + _base_.pack_only
model = dict(data_preprocessor=dict(gpu_augment=dict(
    view1=_base_.byol_view1[1:-2] + [_flip],  # colour, blur (no crop/pack)
    view2=_base_.byol_view2[1:-2] + [_flip])))  # colour, blur, solarize
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.load_image,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='MultiBranch', branch_field=['view1', 'view2'],
         view1=byol_gpu_view, view2=byol_gpu_view),
]))
