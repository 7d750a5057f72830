# Object-aware crops over MoCo v2, toy run, with the view pixel
# augmentations on the batch (issue 18): the CPU workers decode, make the
# object-aware crops and pack; the data preprocessor applies colour jitter,
# grayscale, blur and flip per sample on the model's device. Same ops and
# order as the base config's view_pipeline (minus PackViewInputs).
# Everything else as the base config.
_base_ = ['./mocov2-objcrop_r18_1xb32-150it_toy.py']
gpu_view_augs = _base_.view_pipeline[:-1]
model = dict(data_preprocessor=dict(gpu_augment=dict(
    view1=gpu_view_augs, view2=gpu_view_augs)))
train_dataloader = dict(dataset=dict(
    pipeline=_base_.train_dataloader.dataset.pipeline[:-1] + [
        dict(type='PackViews', pipelines=dict(view1=_base_.pack_only,
                                              view2=_base_.pack_only))]))
