# Low-data protocol, 10 % of COCO train2017 (docs/methods.md §6, §7), in DETReg's
# semi-supervised schedule (_base_/detreg-semi-supervised_8xb3.py): 400 epochs
# of the split (DETReg's configs/DETReg_fine_tune_10pct_coco.sh), 8 GPUs x 3
# images. Splits: python tools/make_low_data_splits.py coco \
#   data/coco/annotations/instances_train2017.json data/coco/low_data
# Seeds 1-4: --cfg-options train_dataloader.dataset.ann_file=low_data/instances_train2017_10pct_seed$S.json
# Derivation (tested in tests/test_detr_pretrain/test_simdetr_configs.py):
#   split = round(118287 x 10 %) = 11829 images
#   per GPU and epoch: ceil(11829 / 8) images, drop_last batches of 3 -> 493 it
#   max_iters = 400 epochs x 493 = 197200
_base_ = './_base_/detreg-semi-supervised_8xb3.py'

max_iters = 197200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 10)
default_hooks = dict(checkpoint=dict(interval=max_iters // 10))
train_dataloader = dict(
    dataset=dict(ann_file='low_data/instances_train2017_10pct_seed0.json'))
