# End-to-end SoCo toy run with the view pixel augmentations on the batch
# (issue 18): the CPU workers decode, crop V1-V3 (+ the raw view) and pack;
# the data preprocessor applies the colour ops and flips of V1-V3 per sample
# on the model's device. The heat-map boxes, their cutout in box and the
# extra crops were on the device already (the model). Same ops and order as
# the base config's view_pipeline (minus PackViewInputs); the raw view stays
# un-augmented. Everything else as the base config.
_base_ = ['./soco-e2e_r18_fpn_1xb32-150it_toy.py']
gpu_view_augs = _base_.view_pipeline[:-1]
model = dict(data_preprocessor=dict(gpu_augment=dict(
    v1=gpu_view_augs, v2=gpu_view_augs, v3=gpu_view_augs)))
train_dataloader = dict(dataset=dict(
    pipeline=_base_.train_dataloader.dataset.pipeline[:-1] + [
        dict(type='PackViews', pipelines=dict(
            v1=_base_.pack_only, v2=_base_.pack_only, v3=_base_.pack_only,
            raw=_base_.pack_only))]))
