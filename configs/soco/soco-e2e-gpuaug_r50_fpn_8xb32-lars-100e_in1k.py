# End-to-end SoCo R50 on ImageNet-1k (100 epochs, fp16 AMP) with the view
# pixel augmentations on the GPU batch (issue 18): the CPU workers decode,
# crop V1-V3 (+ the raw view) and pack; the data preprocessor applies V1's
# colour / blur and V2 / V3's colour / blur / solarize and the flips per
# sample on the GPU. The heat-map boxes, their cutout in box and the extra
# crops were on the GPU already (the model). Same ops and order as the base
# config's view pipelines (minus PackViewInputs); the raw view stays
# un-augmented. Everything else as the base config.
_base_ = ['./soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py']
model = dict(data_preprocessor=dict(gpu_augment=dict(
    v1=_base_.v1_pipeline[:-1],
    v2=_base_.v2_pipeline[:-1],
    v3=_base_.v2_pipeline[:-1])))
train_dataloader = dict(dataset=dict(
    pipeline=_base_.train_dataloader.dataset.pipeline[:-1] + [
        dict(type='PackViews', pipelines=dict(
            v1=_base_.pack_only, v2=_base_.pack_only, v3=_base_.pack_only,
            raw=_base_.pack_only))]))
