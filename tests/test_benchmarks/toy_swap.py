# Copyright (c) mmselfdet contributors. All rights reserved.
"""Swap a benchmark config onto the toy data: the ``--cfg-options`` a user
would pass (as a dict for ``Config.merge_from_dict``), shrinking images to
toy size and the run to two CPU iterations."""
import copy

from mmselfdet.datasets.toy import TOY_METAINFO

SCALE_KEYS = ('scale', 'scales', 'crop_size')


def shrink(obj, factor: float):
    """Every resize / crop size in a pipeline times ``factor`` (types and
    order of the transforms unchanged)."""
    if isinstance(obj, dict):
        return {k: (shrink_size(v, factor) if k in SCALE_KEYS else
                    shrink(v, factor)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(shrink(v, factor) for v in obj)
    return obj


def shrink_size(v, factor):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return max(8, int(v * factor))
    if isinstance(v, (list, tuple)):
        return type(v)(shrink_size(x, factor) for x in v)
    return v


def toy_options(cfg, toy_root: str, factor: float = 0.1,
                iters: int = 2) -> dict:
    """Options that train ``cfg``'s model on the toy ``train`` split for
    ``iters`` iterations, batch 2, no evaluation, no checkpoint loading."""
    ds = cfg.train_dataloader.dataset
    while 'pipeline' not in ds:  # wrappers: RepeatDataset, ConcatDataset
        ds = ds.get('dataset') or ds['datasets'][0]
    pipeline = shrink(copy.deepcopy(ds['pipeline']), factor)
    # VOC-style LoadAnnotations has no masks; the toy json has them
    dataset = dict(_delete_=True, type='CocoDataset', data_root=toy_root,
                   ann_file='annotations/train.json',
                   data_prefix=dict(img='train/'), metainfo=TOY_METAINFO,
                   filter_cfg=dict(filter_empty_gt=True, min_size=4),
                   pipeline=pipeline)
    opts = {
        'train_dataloader': dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=False),
            batch_sampler=None, dataset=dataset),
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop',
                          max_iters=iters, val_interval=10**6),
        'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
        'test_dataloader': None, 'test_cfg': None, 'test_evaluator': None,
        'param_scheduler': [],
        'load_from': None,
        'default_hooks': dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(_delete_=True, type='CheckpointHook',
                            interval=10**6)),
        'log_processor': dict(by_epoch=False, window_size=1),
        'log_level': 'WARNING',
    }
    train_cfg = cfg.model.get('train_cfg') or {}
    if 'rcnn' in train_cfg:  # R-CNNs: fewer RoIs (the heads dominate on CPU)
        opts['model.train_cfg.rcnn.sampler.num'] = 8
        opts['model.train_cfg.rpn_proposal.nms_pre'] = 200
        opts['model.train_cfg.rpn_proposal.max_per_img'] = 64
    return opts
