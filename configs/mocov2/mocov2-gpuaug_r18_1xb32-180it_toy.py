# MoCo v2 toy run with the pixel augmentations on the batch (issue 18):
# the CPU workers decode, crop and pack; MultiViewDataPreprocessor applies
# colour jitter, grayscale, blur and flip per sample on the model's device
# (same distributions as the CPU pipeline: tests/test_models/
# test_batched_augment_stats.py). Everything else as the base config.
_base_ = ['./mocov2_r18_1xb32-180it_toy.py']
model = dict(data_preprocessor=dict(gpu_augment=_base_.gpu_augment))
train_dataloader = dict(dataset=dict(pipeline=_base_.gpu_train_pipeline))
