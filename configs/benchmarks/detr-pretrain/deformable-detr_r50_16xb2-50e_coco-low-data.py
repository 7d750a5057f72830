# Low-data protocol (METHODS.md §6, §7): the Deformable DETR fine-tuning of
# ./deformable-detr_r50_16xb2-50e_coco.py on a fixed COCO subset written by
#   python tools/make_low_data_splits.py coco \
#       data/coco/annotations/instances_train2017.json data/coco/low_data
# (1/2/5/10 % x seeds 0-4). Pick the split on the command line, e.g.
#   python tools/train.py THIS_CONFIG \
#       --work-dir work_dirs/low_data/detr-pretrain/5pct_seed3 --cfg-options \
#       train_dataloader.dataset.ann_file=low_data/instances_train2017_5pct_seed3.json
# then `python tools/aggregate_results.py work_dirs/low_data` prints mean +- std.
_base_ = './deformable-detr_r50_16xb2-50e_coco.py'
train_dataloader = dict(
    dataset=dict(ann_file='low_data/instances_train2017_1pct_seed0.json'))
