# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage 2 of own-data pretraining: the paper config rewritten for the
user's images (data paths, iteration budget, schedule, lr rule)."""
import math
import os
import os.path as osp
from typing import List, Optional, Tuple

from .common import REPO, InputError, Method

CAP_FACTOR = 4  # at most CAP_FACTOR x the paper's epochs
MIN_ITERS = 200  # floor of a derived budget
# AMP optimizer wrapper -> its fp32 twin (a run without CUDA); the
# non-finite guard stays (tools/train.py --amp maps the other way)
FP32_OF = {
    'AmpOptimWrapper': 'OptimWrapper',
    'NonFiniteGuardAmpOptimWrapper': 'NonFiniteGuardOptimWrapper',
}


def derive_budget(num_images: int, total_batch: int, paper_epochs: float,
                  paper_images: int, epochs: Optional[float] = None,
                  iters: Optional[int] = None) -> Tuple[int, List[str]]:
    """Training iterations for ``num_images`` and the lines explaining them.

    Default: as many images seen as the paper (``paper_epochs x
    paper_images``), i.e. ``paper_epochs x paper_images / num_images``
    epochs, capped at ``CAP_FACTOR x paper_epochs`` epochs (a small set is
    not repeated without end) and floored at one epoch and at ``MIN_ITERS``
    iterations; ``epochs`` or ``iters`` override it.
    """
    seen = paper_epochs * paper_images
    why = [f'paper: {paper_epochs:g} epochs x {paper_images:,} images = '
           f'{seen / 1e6:.1f}M images seen']
    if iters is not None:
        why.append(f'--iters {iters}')
        return iters, why
    if epochs is None:
        keep = seen / num_images
        epochs = min(max(keep, 1.0), CAP_FACTOR * paper_epochs)
        why.append(f'yours: {num_images:,} images; {keep:,.1f} epochs see as '
                   f'many' + (f', capped at {CAP_FACTOR} x {paper_epochs:g} = '
                              f'{epochs:g} epochs' if keep > epochs else '')
                   + (', floored at 1 epoch' if keep < epochs else ''))
        floor = MIN_ITERS
    else:
        why.append(f'--epochs {epochs:g}')
        floor = 1
    raw = math.ceil(epochs * num_images / total_batch)
    n = max(raw, floor)
    why.append(f'{epochs:g} epochs x {num_images:,} images / batch '
               f'{total_batch} = {raw:,} iterations' +
               (f', floored at {floor}' if raw < floor else '') +
               ' (override with --epochs / --iters)')
    return n, why


def find_dataset(cfg) -> dict:
    """The image dataset of ``train_dataloader`` (inside wrappers)."""
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds


def stretch_schedule(cfg, iters: int, paper_iters: float) -> None:
    """Make ``cfg`` iteration-based with ``iters`` steps: every scheduler and
    interval hook keeps its shape, stretched from the paper's length."""
    tc = cfg.train_cfg
    epochs = tc.get('max_epochs')
    ep_scale = iters / epochs if epochs else None
    it_scale = iters / (tc.get('max_iters') or paper_iters)
    scheds = cfg.get('param_scheduler') or []
    for s in (scheds if isinstance(scheds, list) else [scheds]):
        by_epoch = s.get('by_epoch', True)
        k = ep_scale if by_epoch else it_scale
        if k is None:
            raise InputError(f'{cfg.filename}: an epoch-based scheduler in '
                             'an iteration-based config')
        for key in ('begin', 'end', 'T_max'):
            if key in s and s[key] is not None and s[key] < 1e8:
                s[key] = min(iters, max(int(round(s[key] * k)),
                                        1 if s[key] > 0 else 0))
        if 'milestones' in s:
            s['milestones'] = [max(1, int(round(m * k)))
                               for m in s['milestones']]
        s['by_epoch'] = False
        s.pop('convert_to_iter_based', None)
    for h in cfg.get('custom_hooks') or []:
        if h.get('by_epoch') and 'interval' in h and ep_scale:
            h['interval'] = max(1, int(round(h['interval'] * ep_scale)))
            h['by_epoch'] = False
    loop = dict(type='IterBasedTrainLoop', max_iters=iters)
    if tc.get('type') in ('SelfTrainingLoop', 'SelfTrainingEpochLoop'):
        # SimDETR: keep the self-training rounds, interval in iterations
        rounds = {k: v for k, v in tc.items() if k not in (
            'type', 'max_epochs', 'max_iters', 'val_begin', 'val_interval',
            'dynamic_intervals')}
        if tc.type == 'SelfTrainingEpochLoop' and ep_scale:
            rounds['interval'] = max(1, int(round(rounds['interval'] *
                                                  ep_scale)))
        loop = dict(rounds, type='SelfTrainingLoop', max_iters=iters)
    cfg.train_cfg = loop
    hooks = cfg.default_hooks
    hooks.checkpoint.update(by_epoch=False,
                            interval=max(1, math.ceil(iters / 10)))
    hooks.logger.interval = max(1, min(hooks.logger.get('interval', 50),
                                       iters // 10))
    cfg.log_processor = dict(cfg.get('log_processor', {}), by_epoch=False)
    for key in ('max_epochs', 'max_iters'):
        cfg.pop(key, None)


def derive_config(args, method: Method, root: str, images_json: str,
                  num_images: int, data_dir: str, cuda: bool):
    """The paper config rewritten for the user's images (see the module
    doc); returns (config, lines to print, preparation outputs)."""
    from mmengine.config import Config
    cfg_path = args.config or osp.join(REPO, method.config)
    cfg = Config.fromfile(cfg_path)
    if args.cfg_options:  # first too, so a batch or model change counts
        cfg.merge_from_dict(args.cfg_options)
    dl = cfg.train_dataloader
    if args.batch_size:
        dl.batch_size = args.batch_size
    if args.workers is not None:
        dl.num_workers = args.workers
        for h in (cfg.get('custom_hooks') or []) + [cfg.train_cfg]:
            if 'label_dataloader' in h:  # SimDETR's own loader
                h.label_dataloader.num_workers = args.workers
    if not dl.get('num_workers'):
        dl.persistent_workers = False
    dl.sampler = dict(type='InfiniteSampler',
                      shuffle=dl.get('sampler', {}).get('shuffle', True))
    ds = find_dataset(cfg)
    ds.update(data_root='', data_prefix=dict(img=root + os.sep))
    prep = {}
    if method.prepare == 'detr_stages':
        k = int(cfg.get('num_classes', 256))
        sub = osp.join(data_dir, 'simdetr')
        prep = dict(num_classes=k, proposals=osp.join(sub, 'proposals.json'),
                    labels=osp.join(sub, f'pseudo_labels_k{k}.json'),
                    depth=cfg.model.backbone.depth)
        cfg.num_classes = k
        cfg.metainfo = dict(classes=tuple(f'cluster_{i:03d}'
                                          for i in range(k)))
        ds.update(ann_file=prep['labels'], metainfo=cfg.metainfo)
        cfg.model.bbox_head.num_classes = k
        cfg.model.backbone.init_cfg.checkpoint = osp.abspath(args.backbone)
        cfg.backbone_checkpoint = osp.abspath(args.backbone)
    else:
        ds.update(ann_file=images_json, check_files=False)
        if method.prepare == 'selective_search':
            prep = dict(proposals=osp.join(data_dir, 'proposals_ss.json'))
            ds.proposal_file = prep['proposals']
    for key in ('data_root', 'ann_file', 'imagenet_dataset', 'coco_dataset',
                'img_prefix'):
        cfg.pop(key, None)

    per_gpu, world = dl.batch_size, args.gpus
    total = per_gpu * world
    declared = cfg.auto_scale_lr.base_batch_size
    paper_epochs = cfg.train_cfg.get('max_epochs')
    if paper_epochs is None and args.iters is None:
        raise InputError(f'{cfg_path} counts iterations: give --iters')
    iters, why = derive_budget(num_images, total, paper_epochs or 1,
                               method.paper_images, args.epochs, args.iters)
    stretch_schedule(cfg, iters,
                     (paper_epochs or 1) * method.paper_images / declared)
    lr = cfg.optim_wrapper.optimizer.lr
    if total == declared:
        why.append(f'lr {lr:g} as written: your batch {world} x {per_gpu} = '
                   f'{total} is the declared {declared}')
    else:
        cfg.auto_scale_lr.enable = True
        why.append(f'lr {lr:g} is for the declared batch {declared}; yours is '
                   f'{world} x {per_gpu} = {total}: scaled linearly to '
                   f'{lr:g} x {total}/{declared} = {lr * total / declared:.6g}'
                   ' (auto_scale_lr.enable=True, applied by mmengine)')
    if num_images < total:
        why.append(f'warning: {num_images} images < one batch of {total}: '
                   'every step repeats images')
    queue = cfg.model.get('queue_len')
    if queue and queue > num_images:
        why.append(f'warning: the queue (model.queue_len={queue}) is longer '
                   f'than your {num_images} images: it holds several keys '
                   'of each image; consider --cfg-options model.queue_len=...')
    amp = cfg.optim_wrapper.get('type')
    if amp in FP32_OF and not cuda and args.launcher != 'slurm':
        cfg.optim_wrapper.type = FP32_OF[amp]
        cfg.optim_wrapper.pop('loss_scale', None)
        why.append(f'no GPU here: fp32 instead of AMP ({amp} needs CUDA; '
                   f'{FP32_OF[amp]} instead)')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg, why, prep


def write_config(cfg, path: str, header: List[str]) -> None:
    """Dump ``cfg`` to ``path`` with ``header`` as leading comments."""
    text = cfg.pretty_text
    with open(path, 'w') as f:
        f.write(''.join(f'# {h}\n' for h in header) + text)

