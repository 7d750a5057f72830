# SoCo (ground-truth boxes) toy run with the view pixel augmentations on the
# batch (issue 18): the CPU workers decode, make V1-V3 with their boxes and
# pack; the data preprocessor applies each view's colour ops, V2 / V3's
# cutout in box (at each sample's boxes, after the colour ops) and the flip
# (which moves the boxes and the homography) per sample on the model's
# device. Same ops and order as the base config's view pipelines (minus
# PackViewInputs). Everything else as the base config.
_base_ = ['./soco-gtboxes_r18_fpn_1xb32-150it_toy.py']
model = dict(data_preprocessor=dict(gpu_augment=dict(
    v1=_base_.view_pipeline[:-1],
    v2=_base_.cutout_pipeline[:-1],
    v3=_base_.cutout_pipeline[:-1])))
train_dataloader = dict(dataset=dict(
    pipeline=_base_.train_dataloader.dataset.pipeline[:-1] + [
        dict(type='PackViews', pipelines=dict(
            v1=_base_.pack_only, v2=_base_.pack_only, v3=_base_.pack_only))]))
