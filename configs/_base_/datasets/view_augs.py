# Per-view pixel augmentations shared by the pretraining pipelines
# (MoCo v2 / BYOL style, docs/methods.md §0). Geometric view making happens
# before these (RandomResizedCropWithBoxes, or a view maker + PackViews).

# The image loader of every pretraining pipeline: an unreadable file
# (corrupt, truncated, empty) is skipped and counted (BadImageSummaryHook);
# on_error='fail' stops the run naming the file. UnlabeledDataset refuses
# a plain LoadImageFromFile (no bad-image policy), naming this fix.
load_image = dict(type='LoadImageRobust', on_error='skip')
color_augs = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.1, prob=0.8),
    # torchvision's luminance weights, in BGR order
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.299)),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, prob=0.5),
]
flip_pack = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackViewInputs'),  # keeps homography_matrix and box ids
]

# GPU-side augmentation (issue 18): the same pixel ops and flip, run on the
# batch by MultiViewDataPreprocessor(gpu_augment=dict(view=ops)); the view
# pipeline then only crops and packs. Used by the *-gpuaug configs; the
# defaults above (CPU augmentation) are unchanged.
gpu_augs = color_augs + [dict(type='RandomFlip', prob=0.5)]
pack_only = [dict(type='PackViewInputs')]
