# Low-data protocol, 1 % of COCO train2017 (docs/methods.md §6, §7), in DETReg's
# semi-supervised schedule (_base_/detreg-semi-supervised_8xb3.py): 2000 epochs
# of the split (DETReg's configs/DETReg_fine_tune_1pct_coco.sh), 8 GPUs x 3
# images. Splits: python tools/make_low_data_splits.py coco \
#   data/coco/annotations/instances_train2017.json data/coco/low_data
# Seeds 1-4: --cfg-options train_dataloader.dataset.ann_file=low_data/instances_train2017_1pct_seed$S.json
# Derivation (tested in tests/test_detr_pretrain/test_simdetr_configs.py):
#   split = round(118287 x 1 %) = 1183 images
#   per GPU and epoch: ceil(1183 / 8) images, drop_last batches of 3 -> 49 it
#   max_iters = 2000 epochs x 49 = 98000
_base_ = './_base_/detreg-semi-supervised_8xb3.py'

max_iters = 98000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 10)
default_hooks = dict(checkpoint=dict(interval=max_iters // 10))
train_dataloader = dict(
    dataset=dict(ann_file='low_data/instances_train2017_1pct_seed0.json'))
