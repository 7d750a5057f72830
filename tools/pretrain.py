# Copyright (c) mmselfdet contributors. All rights reserved.
"""Pretrain a method on your own images in one command.

Usage::

    python tools/pretrain.py METHOD (--images DIR | --ann-file FILE
        [--images ROOT]) --work-dir W [--gpus N | --launcher slurm
        --partition P --gpus N] [--batch-size B] [--epochs E | --iters T]
        [--backbone CKPT] [--downstream-config CFG] [--dry-run]
        [--cfg-options k=v ...]

Stages (each printed with its wall time):

1. **images**: list the folder (recursive) / COCO json / list file, stop on
   an empty folder or on listed files that do not exist, decode every image
   as training does (``LoadImageRobust``) and write the readable ones to
   ``W/data/images.json``; unreadable ones are counted and listed in
   ``W/data/bad_images.tsv`` (path, reason) and left out.
2. **config**: the method's paper config (:data:`METHODS`) rewritten for
   these images, written to ``W/pretrain_<method>.py`` (keep and edit it):
   data paths; an iteration budget derived from the image count (see
   :func:`derive_budget`), the paper's schedule shape stretched to it; the
   lr rule (the config's lr is for the batch its name declares; another
   total batch sets ``auto_scale_lr.enable=True`` and mmengine scales it
   linearly); then ``--cfg-options``.
3. **prepare** (resumable, skipped when done): selective search
   (``tools/generate_proposals.py``, ``--workers`` processes) for SoCo and
   object-aware crops; stages A-B (``tools/detr_pretrain/``) for SimDETR.
4. **train**: ``tools/train.py`` (1 process), ``tools/dist_train.sh``
   (``--gpus N``, torchrun) or ``tools/slurm_train.sh`` (``--launcher
   slurm``). ``--resume`` continues from the work dir's latest checkpoint.
5. **export**: the method's transfer set in mmdet names, checked against the
   downstream detector config; prints the ``load_from`` line for it.

``--dry-run`` runs stages 1-2 and prints the commands of 3-5.
"""
import argparse
import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from multiprocessing import Pool
from typing import Dict, List, NamedTuple, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

IMAGENET_1K, COCO_TRAIN = 1_281_167, 118_287  # images of the paper datasets
CAP_FACTOR = 4  # at most CAP_FACTOR x the paper's epochs
MIN_ITERS = 200  # floor of a derived budget


class Method(NamedTuple):
    """A method for own-data pretraining."""
    config: str  # the paper config
    paper_images: int  # images of its dataset (the budget's reference)
    prepare: Optional[str]  # None, 'selective_search' or 'detr_stages'
    downstream: str  # detector config the export is checked against


_BENCH = 'configs/benchmarks/{}/mask-rcnn_r50_fpn_ms-1x_coco.py'
# The one method table of this tool. Names follow the quickstart's toy
# table (mmselfdet/quickstart.py METHODS) where both exist; its SoCo on
# ground-truth boxes needs labels, so own images use 'soco-ss'.
METHODS: Dict[str, Method] = {
    'mocov2': Method('configs/mocov2/mocov2_r50_8xb32-coslr-200e_in1k.py',
                     IMAGENET_1K, None, _BENCH.format('mocov2')),
    'byol': Method('configs/byol/byol_r50_16xb256-coslr-200e_in1k.py',
                   IMAGENET_1K, None, _BENCH.format('byol')),
    'insloc': Method('configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py',
                     IMAGENET_1K, None, _BENCH.format('insloc')),
    'detco': Method('configs/detco/detco_r50_8xb32-coslr-200e_in1k.py',
                    IMAGENET_1K, None, _BENCH.format('detco')),
    'mocov2-objcrop': Method(
        'configs/objcrop/mocov2-objcrop_r50_8xb32-coslr-200e_coco.py',
        COCO_TRAIN, 'selective_search', _BENCH.format('objcrop')),
    'byol-objcrop': Method(
        'configs/objcrop/byol-objcrop_r50_8xb32-coslr-200e_coco.py',
        COCO_TRAIN, 'selective_search', _BENCH.format('byol')),
    'soco-ss': Method('configs/soco/soco_r50_fpn_8xb32-lars-100e_in1k.py',
                      IMAGENET_1K, 'selective_search', _BENCH.format('soco')),
    'soco-e2e': Method(
        'configs/soco/soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py', IMAGENET_1K,
        None, _BENCH.format('soco-e2e')),
    'simdetr': Method(
        'configs/simdetr/simdetr_deformable-detr_r50_16xb2-50e_coco.py',
        COCO_TRAIN, 'detr_stages',
        'configs/simdetr/deformable-detr_r50_16xb2-50e_coco-ft.py'),
}


class InputError(SystemExit):
    """Bad input: the message names the file or folder and what is wrong."""

    def __init__(self, msg: str):
        super().__init__(f'error: {msg}')


# --------------------------------------------------------------------------
# arguments and stage printing
# --------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog='See docs/own_data.md.')
    p.add_argument('method', choices=sorted(METHODS))
    p.add_argument('--images', help='image folder (scanned recursively), or '
                   'with --ann-file the folder its file names are relative '
                   'to (default: the file\'s folder)')
    p.add_argument('--ann-file', help='COCO json (its "images") or a list '
                   'file (.txt, one name per line)')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--config', help='start from this config instead of the '
                   "method's paper config")
    p.add_argument('--gpus', type=int, default=None,
                   help='processes: torchrun on this machine, or SLURM tasks')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                   default=None, help='default: none (1 process), pytorch '
                   'with --gpus > 1')
    p.add_argument('--partition', help='SLURM partition')
    p.add_argument('--job-name', help='SLURM job name')
    p.add_argument('--gpus-per-node', type=int, default=8)
    p.add_argument('--batch-size', type=int, help='images per process')
    p.add_argument('--epochs', type=float, help='override the derived budget')
    p.add_argument('--iters', type=int, help='override the derived budget')
    p.add_argument('--workers', type=int, default=None,
                   help='processes for the image check and the preparation, '
                   'dataloader workers (default: min(8, CPUs); config)')
    p.add_argument('--check-images', choices=['decode', 'header', 'none'],
                   default='decode', help='how every image is checked once')
    p.add_argument('--backbone', help='simdetr: self-supervised backbone '
                   'checkpoint (e.g. the export of a mocov2 run)')
    p.add_argument('--prepare-args', default='',
                   help='extra arguments of the preparation command (stage A '
                   'for simdetr), e.g. "--max-side 256"')
    p.add_argument('--downstream-config', help='detector config to export '
                   "for (default: the method's Mask R-CNN R50-FPN)")
    p.add_argument('--export-parts', nargs='+', help='detector prefixes to '
                   'export, e.g. backbone. (default: the whole transfer set)')
    p.add_argument('--resume', action='store_true',
                   help='continue training from the latest checkpoint in W')
    p.add_argument('--dry-run', action='store_true', help='check the images, '
                   'write the config, print the commands; run nothing')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys (applied last)')
    args = p.parse_args(argv)
    if not args.images and not args.ann_file:
        p.error('give --images DIR or --ann-file FILE')
    if args.epochs is not None and args.iters is not None:
        p.error('give --epochs or --iters, not both')
    if args.launcher is None:
        args.launcher = 'pytorch' if (args.gpus or 1) > 1 else 'none'
    if args.launcher == 'none' and (args.gpus or 1) > 1:
        p.error('--gpus N > 1 runs N processes: use --launcher pytorch '
                '(the default then) or slurm')
    if args.launcher == 'slurm' and not args.partition:
        p.error('--launcher slurm needs --partition')
    args.gpus = args.gpus or 1
    if args.method == 'simdetr' and not args.backbone:
        p.error('simdetr needs --backbone CKPT, a self-supervised backbone '
                '(e.g. W/exported.pth of "tools/pretrain.py mocov2 ...")')
    if args.backbone and not args.dry_run and not osp.isfile(args.backbone):
        p.error(f'--backbone "{args.backbone}" does not exist')
    return args


class Stage:
    """Print a numbered stage header and, at the end, its wall time."""
    count = 0

    def __init__(self, title: str):
        Stage.count += 1
        print(f'\n==> [{Stage.count}] {title}', flush=True)
        self.t0 = time.time()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f'    done in {time.time() - self.t0:.1f} s', flush=True)


# --------------------------------------------------------------------------
# stage 1: images
# --------------------------------------------------------------------------
def list_input(images: Optional[str], ann_file: Optional[str]
               ) -> Tuple[str, List[dict]]:
    """The image root and the entries (``id``, ``file_name``, ``path``).

    Raises:
        InputError: A missing folder or file, no image, a json without
            ``images``, or listed files that do not exist (how many, which).
    """
    from mmselfdet.datasets.unlabeled import IMG_SUFFIXES
    if not ann_file:
        root = osp.abspath(images)
        if not osp.isdir(root):
            raise InputError(f'image folder "{images}" does not exist')
        names = []
        for d, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            names += [osp.relpath(osp.join(d, f), root) for f in sorted(files)
                      if f.lower().endswith(IMG_SUFFIXES)]
        if not names:
            raise InputError(f'image folder "{images}" holds no image (looked '
                             f'recursively for {", ".join(IMG_SUFFIXES)})')
        entries = [dict(id=i, file_name=n) for i, n in enumerate(names)]
    else:
        if not osp.isfile(ann_file):
            raise InputError(f'--ann-file "{ann_file}" does not exist')
        root = osp.abspath(images or osp.dirname(ann_file))
        if ann_file.endswith('.json'):
            try:
                with open(ann_file) as f:
                    coco = json.load(f)
            except (OSError, ValueError) as e:
                raise InputError(f'cannot read "{ann_file}": {e}') from e
            if not isinstance(coco, dict) or not isinstance(
                    coco.get('images'), list):
                raise InputError(f'"{ann_file}" is not a COCO json (no '
                                 '"images" list)')
            try:
                entries = [dict(id=im['id'], file_name=im['file_name'])
                           for im in coco['images']]
            except (KeyError, TypeError) as e:
                raise InputError(f'"{ann_file}": an entry of "images" has '
                                 f'no {e} (COCO needs id and file_name)')
        else:
            with open(ann_file) as f:
                entries = [dict(id=i, file_name=ln.split()[0]) for i, ln in
                           enumerate(ln for ln in f if ln.strip())]
        if not entries:
            raise InputError(f'"{ann_file}" lists no image')
        if len({e['id'] for e in entries}) != len(entries):
            raise InputError(f'"{ann_file}": image ids are not unique')
    for e in entries:
        e['path'] = osp.join(root, e['file_name'])
    if ann_file:
        missing = [e['file_name'] for e in entries
                   if not osp.isfile(e['path'])]
        if missing:
            raise InputError(
                f'{len(missing)} of the {len(entries)} images listed in '
                f'"{ann_file}" do not exist under "{root}", e.g. '
                f'{missing[:5]} (--images sets the folder the names are '
                'relative to)')
    return root, entries


def check_image(job: Tuple[str, str]) -> Tuple[Optional[Tuple[int, int]],
                                                str]:
    """``((width, height), '')`` of a readable image, ``(None, reason)``
    otherwise; ``job`` is (path, mode)."""
    path, mode = job
    if mode == 'none':
        return (0, 0), ''
    try:
        if mode == 'header':
            from mmselfdet.datasets.proposals import image_size_from_header
            return image_size_from_header(path), ''
        from mmselfdet.datasets.transforms.loading import LoadImageRobust
        h, w = LoadImageRobust(on_error='raise')(dict(img_path=path))[
            'ori_shape']
        return (int(w), int(h)), ''
    except Exception as e:  # noqa: BLE001  (every failure is reported)
        return None, str(e).replace('\t', ' ').replace('\n', ' ')


def check_images(root: str, entries: List[dict], mode: str, workers: int,
                 data_dir: str) -> Tuple[str, List[dict], int]:
    """Check every image once, write ``images.json`` (the readable ones) and
    ``bad_images.tsv``; returns (json path, readable entries, bad count).
    A finished check of the same input is reused."""
    os.makedirs(data_dir, exist_ok=True)
    out = osp.join(data_dir, 'images.json')
    import hashlib
    names = '\n'.join(str(e['file_name']) for e in entries).encode()
    sig = dict(root=root, mode=mode, num=len(entries),
               files=hashlib.md5(names).hexdigest())
    sig_file = osp.join(data_dir, 'check.json')
    if osp.isfile(out) and osp.isfile(sig_file):
        with open(sig_file) as f:
            if json.load(f) == sig:
                with open(out) as g:
                    good = json.load(g)['images']
                print(f'    {len(good)} images checked before ({out})')
                return out, good, len(entries) - len(good)
    import mmselfdet.datasets  # noqa: F401  (imported once, before forking)
    from tqdm import tqdm
    jobs = [(e['path'], mode) for e in entries]
    procs = workers if len(jobs) >= 64 else 1
    bar = dict(total=len(jobs), unit='img', desc='    check',
               disable=len(jobs) < 1000, file=sys.stdout)
    if procs > 1:
        with Pool(procs) as pool:
            results = list(tqdm(pool.imap(check_image, jobs, chunksize=16),
                                **bar))
    else:
        results = [check_image(j) for j in tqdm(jobs, **bar)]
    good, bad = [], []
    for e, (size, reason) in zip(entries, results):
        if size is None:
            bad.append((e['path'], reason))
        else:
            im = dict(id=e['id'], file_name=e['file_name'])
            if size != (0, 0):
                im.update(width=size[0], height=size[1])
            good.append(im)
    bad_file = osp.join(data_dir, 'bad_images.tsv')
    with open(bad_file, 'w') as f:
        f.writelines(f'{p}\t{r}\n' for p, r in bad)
    print(f'    {len(entries)} images under {root}: {len(good)} readable, '
          f'{len(bad)} unreadable ({mode} check, {procs} process(es))')
    if bad:
        print(f'    unreadable images are left out, listed in {bad_file}, '
              f'e.g. {[osp.basename(p) for p, _ in bad[:3]]}')
    if not good:
        raise InputError(f'none of the {len(entries)} images under "{root}" '
                         f'can be read (listed in {bad_file})')
    with open(out, 'w') as f:
        json.dump(dict(images=good, annotations=[],
                       categories=[dict(id=0, name='object')]), f)
    with open(sig_file, 'w') as f:
        json.dump(sig, f)
    return out, good, len(bad)


# --------------------------------------------------------------------------
# stage 2: budget, learning rate, config
# --------------------------------------------------------------------------
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
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
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
        for h in cfg.get('custom_hooks') or []:
            if 'label_dataloader' in h:  # SelfTrainingHook's own loader
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
    if (cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and not cuda
            and args.launcher != 'slurm'):
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
        why.append('no GPU here: fp32 instead of AMP (AmpOptimWrapper needs '
                   'CUDA)')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg, why, prep


def write_config(cfg, path: str, header: List[str]) -> None:
    """Dump ``cfg`` to ``path`` with ``header`` as leading comments."""
    text = cfg.pretty_text
    with open(path, 'w') as f:
        f.write(''.join(f'# {h}\n' for h in header) + text)


# --------------------------------------------------------------------------
# stages 3-5: preparation, training, export
# --------------------------------------------------------------------------
def preparation(args, method: Method, prep: dict, root: str,
                images_json: str, workers: int) -> List[Tuple[str, list,
                                                              str]]:
    """The preparation steps: (title, command, output file)."""
    py, extra = sys.executable, shlex.split(args.prepare_args)
    if method.prepare == 'selective_search':
        return [('selective-search proposals', [
            py, osp.join(REPO, 'tools/generate_proposals.py'), root,
            '--ann-file', images_json, '--out', prep['proposals'], '--mode',
            'fast', '--workers', str(workers)] + extra, prep['proposals'])]
    if method.prepare == 'detr_stages':
        tools = osp.join(REPO, 'tools', 'detr_pretrain')
        return [
            ('stage A: feature-cluster proposals', [
                py, osp.join(tools, 'make_proposals.py'), images_json,
                '--img-root', root, '--checkpoint', osp.abspath(args.backbone),
                '--arch', f'resnet{prep["depth"]}', '--out',
                prep['proposals'], '--workers', str(workers)] + extra,
             prep['proposals']),
            ('stage B: k-means pseudo-classes', [
                py, osp.join(tools, 'cluster_pseudo_labels.py'),
                prep['proposals'], '--num-classes', str(prep['num_classes']),
                '--out', prep['labels']], prep['labels'])]
    return []


def run_step(cmd: list, out: str, images_json: str) -> None:
    """Run a preparation command unless ``out`` was made by the same
    command from the same image list (a stamp beside it says so); an
    interrupted step resumes through the tool's own partial files."""
    import hashlib
    with open(images_json, 'rb') as f:
        stamp = dict(cmd=cmd[1:], images=hashlib.md5(f.read()).hexdigest())
    stamp_file = out + '.done.json'
    if osp.isfile(out) and osp.isfile(stamp_file):
        with open(stamp_file) as f:
            if json.load(f) == stamp:
                print(f'    {out} exists (same command and images): skipped')
                return
    os.makedirs(osp.dirname(out), exist_ok=True)
    print('    ' + shlex.join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=REPO)
    if code != 0:
        raise SystemExit(f'error: preparation failed (exit code {code}); '
                         'rerun the same command to resume it:\n  ' +
                         shlex.join(cmd))
    with open(stamp_file, 'w') as f:
        json.dump(stamp, f)


def launch_command(args, cfg_path: str, work: str) -> Tuple[list, dict]:
    """The training command and the environment variables it needs."""
    tail = ['--resume'] if args.resume else []
    env = dict(PYTHON=sys.executable)
    if args.launcher == 'slurm':
        env.update(GPUS=str(args.gpus),
                   GPUS_PER_NODE=str(min(args.gpus, args.gpus_per_node)))
        return ['bash', osp.join(REPO, 'tools/slurm_train.sh'),
                args.partition, args.job_name or f'pretrain-{args.method}',
                cfg_path, work] + tail, env
    if args.launcher == 'pytorch':
        return ['bash', osp.join(REPO, 'tools/dist_train.sh'), cfg_path,
                str(args.gpus), '--work-dir', work] + tail, env
    return [sys.executable, osp.join(REPO, 'tools/train.py'), cfg_path,
            '--work-dir', work] + tail, {}


def latest_checkpoint(work: str) -> str:
    """The checkpoint ``work/last_checkpoint`` points to."""
    pointer = osp.join(work, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    raise SystemExit(f'error: training wrote no checkpoint in {work}')


def show(cmd: list, env: dict) -> str:
    return ' '.join(f'{k}={v}' for k, v in env.items() if k != 'PYTHON') + \
        (' ' if len(env) > 1 else '') + shlex.join(cmd)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the stages (see the module doc); returns the summary that is
    also written to ``W/pretrain_summary.json``."""
    args = parse_args(argv)
    method = METHODS[args.method]
    work = osp.abspath(args.work_dir)
    data_dir = osp.join(work, 'data')
    workers = args.workers if args.workers is not None else min(
        8, os.cpu_count() or 1)
    Stage.count = 0
    with Stage(f'images ({args.check_images} check)'):
        root, entries = list_input(args.images, args.ann_file)
        images_json, good, num_bad = check_images(
            root, entries, args.check_images, max(1, workers), data_dir)
    with Stage(f'config: {args.config or method.config}'):
        import torch

        import mmselfdet  # noqa: F401
        cfg, why, prep = derive_config(args, method, root, images_json,
                                       len(good), data_dir,
                                       torch.cuda.is_available())
        cfg_path = osp.join(work, f'pretrain_{args.method}.py')
        train_cmd, env = launch_command(args, cfg_path, work)
        for line in why:
            print('    ' + line)
        write_config(cfg, cfg_path, [
            f'Derived by tools/pretrain.py from {args.config or method.config}'
            f' for {len(good)} images under {root}:'] + why +
            ['Run it again with:', show(train_cmd, env)])
        print(f'    wrote {cfg_path} (keep it, edit it, rerun it)')
    steps = preparation(args, method, prep, root, images_json,
                        max(1, workers))
    downstream = osp.abspath(args.downstream_config or
                             osp.join(REPO, method.downstream))
    exported = osp.join(work, 'exported.pth')
    summary = dict(method=args.method, paper_config=method.config,
                   config=cfg_path, images=len(good), unreadable=num_bad,
                   images_json=images_json, iters=cfg.train_cfg.max_iters,
                   batch_size=cfg.train_dataloader.batch_size,
                   world_size=args.gpus,
                   auto_scale_lr=dict(cfg.auto_scale_lr),
                   prepare=[shlex.join(c) for _, c, _ in steps],
                   train=show(train_cmd, env), downstream_config=downstream,
                   exported=exported, dry_run=args.dry_run)
    if args.dry_run:
        print('\n==> dry run: nothing else is run. The commands would be:')
        for title, cmd, _ in steps:
            print(f'    # {title}\n    {shlex.join(cmd)}')
        print(f'    # train\n    {summary["train"]}\n    # export\n    '
              f'python tools/export_checkpoint.py CKPT {exported} '
              f'--downstream-config {downstream}')
    else:
        for title, cmd, out in steps:
            with Stage(title):
                run_step(cmd, out, images_json)
        with Stage(f'train ({args.launcher}, {args.gpus} process(es))'):
            print('    ' + summary['train'], flush=True)
            code = subprocess.call(train_cmd, cwd=REPO,
                                   env=dict(os.environ, **env))
            if code != 0:
                raise SystemExit(f'error: training failed (exit code {code})'
                                 '; add --resume to continue from the '
                                 'latest checkpoint')
        with Stage(f'export for {osp.relpath(downstream, REPO)}'):
            from mmselfdet.export.exporter import (ExportError,
                                                   export_checkpoint)
            ckpt = latest_checkpoint(work)
            try:
                rep = export_checkpoint(
                    ckpt, exported, downstream_config=downstream,
                    parts=args.export_parts,
                    log=lambda s: print('    ' + s))
            except (ExportError, KeyError, ValueError) as e:
                raise SystemExit(
                    f'error: export failed: {e}\n  retry with: python '
                    f'tools/export_checkpoint.py {ckpt} {exported} '
                    '--downstream-config YOUR_DETECTOR_CONFIG') from e
        summary.update(checkpoint=ckpt, matched=len(rep['matched']),
                       load_from=exported)
        print(f'\nFine-tune a detector from it: in {downstream} set\n'
              f"    load_from = '{exported}'\nor run\n    python tools/"
              f'train.py {downstream} --cfg-options load_from={exported}')
    with open(osp.join(work, 'pretrain_summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


if __name__ == '__main__':
    main()
