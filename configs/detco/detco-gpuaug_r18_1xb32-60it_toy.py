# DetCo toy run with the pixel augmentations on the batch (issue 18): the
# CPU workers decode, crop the global views, cut and flip the jigsaw
# patches and pack; the data preprocessor applies the global views' colour
# ops and flip, and each jigsaw patch's own colour ops (patch mode: every
# one of the 3x3 patches of a tile is its own sample, as JigsawPatches'
# patch_pipeline), per sample on the model's device. Same ops and order as
# the base config (global_pipeline minus PackViewInputs; the patch_pipeline
# of JigsawPatches). Everything else as the base config.
_base_ = ['./detco_r18_1xb32-60it_toy.py']
_pipeline = _base_.train_dataloader.dataset.pipeline
_local = dict(ops=_pipeline[2].patch_pipeline, patch_grid=_pipeline[2].grid)
model = dict(data_preprocessor=dict(gpu_augment=dict(
    view1=_base_.global_pipeline[:-1], view2=_base_.global_pipeline[:-1],
    local1=_local, local2=_local)))
train_dataloader = dict(dataset=dict(pipeline=[
    _pipeline[0], _pipeline[1],  # load, the two global crops
    dict(_pipeline[2], patch_pipeline=None),  # local1 (patch flips kept)
    dict(_pipeline[3], patch_pipeline=None),  # local2
    dict(type='PackViews', pipelines=dict(
        view1=_base_.pack_only, view2=_base_.pack_only,
        local1=_base_.local_pipeline, local2=_base_.local_pipeline)),
]))
