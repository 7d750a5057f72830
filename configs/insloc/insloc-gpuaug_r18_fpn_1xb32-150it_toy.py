# InsLoc toy run with the view pixel augmentations on the batch (issue 18):
# the CPU workers decode, composite (InstanceComposite) and pack; the data
# preprocessor applies the views' colour jitter, grayscale, blur and flip
# per sample on the model's device (the flip moves the query / key boxes).
# Same ops and order as the base config's view_pipeline (its last entry,
# PackViewInputs, stays on the CPU). Everything else as the base config.
_base_ = ['./insloc_r18_fpn_1xb32-150it_toy.py']
gpu_view_augs = _base_.view_pipeline[:-1]
model = dict(data_preprocessor=dict(gpu_augment=dict(
    query=gpu_view_augs, key=gpu_view_augs)))
train_dataloader = dict(dataset=dict(pipeline=[
    _base_.train_dataloader.dataset.pipeline[0],  # InstanceComposite
    dict(type='PackViews', pipelines=dict(query=_base_.pack_only,
                                          key=_base_.pack_only)),
]))
