# BYOL on ImageNet-1k, 16 GPUs x 256 (batch 4096), LARS, 200 epochs.
# Views: BYOL's asymmetric augmentations (Grill et al. 2020, appendix B,
# table 6); the MoCo v2 views are byol-mocov2views_*.py.
_base_ = [
    '../_base_/models/byol_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/lars_coslr-200e.py',
    '../_base_/default_runtime.py',
]
byol_crop = dict(type='RandomResizedCropWithBoxes', scale=224,
                 crop_scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 interpolation='bicubic')
byol_colour = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
         hue=0.1, prob=0.8),
    # torchvision's luminance weights, in BGR order
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.299)),
]
# view 1: blur always, never solarized; view 2: blur 0.1, solarize 0.2
byol_view1 = [byol_crop] + byol_colour + [
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, prob=1.0),
] + _base_.flip_pack
byol_view2 = [byol_crop] + byol_colour + [
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, prob=0.1),
    dict(type='Solarize', prob=0.2, min_mag=128.0, max_mag=128.0),
] + _base_.flip_pack
train_dataloader = dict(
    batch_size=256,
    dataset=dict(pipeline=[
        _base_.load_image,
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='MultiBranch', branch_field=['view1', 'view2'],
             view1=byol_view1, view2=byol_view2),
    ]))
# lr for the declared batch 4096: 0.3 x 4096 / 256
optim_wrapper = dict(optimizer=dict(lr=4.8))
auto_scale_lr = dict(enable=False, base_batch_size=4096)
