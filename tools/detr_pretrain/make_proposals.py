# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stage A of DETR pretraining: boxes + features from a backbone's features.

Runs a (self-supervised) backbone over an unlabeled image set, clusters the
locations of each image's feature map (k-means at several k), turns every
connected component of every cluster into a box, filters the boxes and pools
a feature per box (:class:`mmselfdet.models.proposers.FeatureClusterProposer`).
Writes ``OUT.json`` (mmselfdet proposal format) + ``OUT.features.npy``
(see :mod:`mmselfdet.simdetr.feature_proposals`). Work is written in
shards of ``--shard-size`` images; rerunning the command skips finished
shards (resume), ``--overwrite`` starts afresh.

An image file that cannot be read (corrupt, truncated, empty) is never
replaced by another image (which would duplicate that image's id): with
``--bad-images skip`` (default) it is left out and listed in the json's
``info.skipped_images`` and in the log; with ``--bad-images fail`` the run
stops at once, naming the file.

Example::

    python tools/detr_pretrain/make_proposals.py data/coco/annotations/\
instances_train2017.json --img-root data/coco/train2017 \\
        --checkpoint work_dirs/mocov2/epoch_200.pth --arch resnet50 \\
        --out data/coco/simdetr/proposals.json
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time

import torch
from tqdm import tqdm


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('images', help='image folder, list file (.txt) or COCO '
                   'json (as UnlabeledDataset reads them)')
    p.add_argument('--img-root', default='',
                   help='root of the names in a list / COCO json')
    p.add_argument('--out', required=True, help='output proposal json')
    p.add_argument('--checkpoint', help='backbone checkpoint: a pretraining '
                   'checkpoint or an export (keys "backbone.*"), or a bare '
                   'backbone state dict; random init (seeded by --seed) '
                   'when omitted')
    p.add_argument('--arch', default='resnet50',
                   choices=['resnet18', 'resnet34', 'resnet50', 'resnet101'])
    p.add_argument('--stage', type=int, default=3,
                   help='ResNet stage whose output is clustered (0-3; '
                   'default 3, the last)')
    p.add_argument('--img-scale', type=int, nargs=2, default=[1333, 800],
                   metavar=('LONG', 'SHORT'),
                   help='Resize scale (keep ratio); default 1333 800')
    p.add_argument('--num-clusters', type=int, nargs='+',
                   default=[2, 3, 4, 6], help='the k of the k-means')
    p.add_argument('--min-cells', type=int, default=2)
    p.add_argument('--min-size', type=float, default=8)
    p.add_argument('--aspect-range', type=float, nargs=2, default=[0.25, 4])
    p.add_argument('--area-ratio-range', type=float, nargs=2,
                   default=[0.05, 0.9])
    p.add_argument('--nms-iou', type=float, default=0.7)
    p.add_argument('--max-per-img', type=int, default=50)
    p.add_argument('--feature-dtype', choices=('float16', 'float32'),
                   default='float16',
                   help='dtype of X.features.npy (default float16: half the '
                   'disk and memory map of stage B; shards stay float32)')
    p.add_argument('--score', default='coherence',
                   choices=['coherence', 'contrast'],
                   help='box score: coherence of the component, or '
                   'coherence minus the similarity to the ring of locations '
                   'around it (contrast)')
    p.add_argument('--smooth', type=int, default=1,
                   help='odd window averaging each feature location with '
                   'its neighbours before clustering (1 = none)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--shard-size', type=int, default=1000,
                   help='images per shard (the unit of resuming)')
    p.add_argument('--device', default=None,
                   help='default: cuda if available, else cpu')
    p.add_argument('--overwrite', action='store_true',
                   help='delete finished shards and start again')
    p.add_argument('--bad-images', default='skip', choices=['skip', 'fail'],
                   help='an unreadable image file: leave it out and list it '
                   '(skip, default) or stop naming it (fail)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


class ImagesOnce(torch.utils.data.Dataset):
    """The images ``indices`` of an ``UnlabeledDataset`` through its
    pipeline, each exactly once: a file that cannot be read gives
    ``dict(skipped=dict(id, file_name, reason))`` instead of another image
    (mmengine's ``BaseDataset.__getitem__`` would draw a random one)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        from mmselfdet.datasets.proposals import relative_image_name
        from mmselfdet.datasets.transforms.loading import ImageLoadError
        idx = self.indices[i]
        reason = 'the pipeline returned None'
        try:
            data = self.dataset.prepare_data(idx)
        except ImageLoadError as e:
            data, reason = None, str(e)
        if data is not None:
            return data
        info = self.dataset.get_data_info(idx)
        return dict(skipped=dict(
            id=int(info['img_id']), reason=reason,
            file_name=relative_image_name(info['img_path'],
                                          self.dataset.image_root)))


def collate_images(batch):
    """(``pseudo_collate`` of the readable samples or None, the skipped
    images' records)."""
    from mmengine.dataset import pseudo_collate
    good = [b for b in batch if 'skipped' not in b]
    return (pseudo_collate(good) if good else None,
            [b['skipped'] for b in batch if 'skipped' in b])


def build_backbone(arch: str, stage: int, checkpoint, device, seed=0):
    """A stock mmdet ResNet returning stage ``stage``, with the checkpoint's
    ``backbone.*`` weights (loaded with ``weights_only=True``)."""
    from mmdet.registry import MODELS

    from mmselfdet.export.transfer import load_checkpoint_file
    depth = int(arch.replace('resnet', ''))
    torch.manual_seed(seed)  # a random-init backbone is the same on resume
    backbone = MODELS.build(dict(type='ResNet', depth=depth,
                                 out_indices=(stage, ), norm_eval=True,
                                 init_cfg=None))
    if checkpoint:
        ckpt = load_checkpoint_file(checkpoint)
        sd = ckpt.get('state_dict', ckpt)
        sub = {k[len('backbone.'):]: v for k, v in sd.items()
               if k.startswith('backbone.')}
        sub = sub or sd
        res = backbone.load_state_dict(sub, strict=False)
        own = [k for k in backbone.state_dict()
               if not k.endswith('num_batches_tracked')]
        missing = [k for k in res.missing_keys
                   if not k.endswith('num_batches_tracked')]
        if len(missing) == len(own):
            raise KeyError(f'{checkpoint}: no key matches a {arch} backbone '
                           f'(e.g. {list(sd)[:3]})')
        print(f'loaded {len(own) - len(missing)}/{len(own)} backbone tensors '
              f'from {checkpoint} (missing {len(missing)}, unexpected '
              f'{len(res.unexpected_keys)})', flush=True)
    backbone.to(device)
    backbone.eval()  # mmdet's ResNet.train() returns None
    return backbone


def check_resume_settings(sdir: str, settings: dict) -> None:
    """Record the run's settings in ``SDIR/settings.json``, or, when the
    shard folder already has some, refuse to resume with different ones
    (finished shards would silently mix two settings).

    Raises:
        SystemExit: The settings differ; names the file and the keys.
    """
    path = osp.join(sdir, 'settings.json')
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old != settings:
            keys = sorted(k for k in set(old) | set(settings)
                          if old.get(k) != settings.get(k))
            raise SystemExit(
                f'{path}: the finished shards were made with other settings '
                f'({", ".join(keys)} differ: {[old.get(k) for k in keys]} '
                f'vs {[settings.get(k) for k in keys]}); rerun with '
                '--overwrite to start again, or use another --out')
        return
    if osp.isdir(sdir) and os.listdir(sdir):
        print(f'warning: {sdir} has no settings.json (made by an older '
              'version): its finished shards are kept without a check',
              flush=True)
    os.makedirs(sdir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(settings, f, indent=1)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    from torch.utils.data import DataLoader

    import mmselfdet  # noqa: F401
    from mmselfdet.datasets.proposals import relative_image_name
    from mmselfdet.datasets.unlabeled import UnlabeledDataset
    from mmselfdet.simdetr import done_shards, merge_shards, shard_dir
    from mmselfdet.simdetr import FeatureClusterProposer
    init_default_scope('mmdet')
    from mmdet.models.data_preprocessors import DetDataPreprocessor

    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    sdir = shard_dir(args.out)
    if args.overwrite and osp.isdir(sdir):
        shutil.rmtree(sdir)
    pipeline = [
        # raise on a bad file: ImagesOnce skips it or the run stops
        dict(type='LoadImageRobust', on_error='raise'),
        dict(type='Resize', scale=tuple(args.img_scale), keep_ratio=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor')),
    ]
    images = args.images
    ds = UnlabeledDataset(
        ann_file=images if not osp.isdir(images) else '',
        data_prefix=dict(img=args.img_root if not osp.isdir(images)
                         else images), pipeline=pipeline)
    n = len(ds)
    num_shards = (n + args.shard_size - 1) // args.shard_size
    settings = dict(
        algorithm='feature_clusters', backbone=args.arch, stage=args.stage,
        checkpoint=args.checkpoint, img_scale=list(args.img_scale),
        images=osp.abspath(images), num_images=n,
        shard_size=args.shard_size,
        proposer=dict(num_clusters=list(args.num_clusters),
                      min_cells=args.min_cells, min_size=args.min_size,
                      aspect_range=list(args.aspect_range),
                      area_ratio_range=list(args.area_ratio_range),
                      nms_iou=args.nms_iou, max_per_img=args.max_per_img,
                      score=args.score, smooth=args.smooth, seed=args.seed))
    check_resume_settings(sdir, settings)
    done = done_shards(sdir)
    todo = [s for s in range(num_shards) if s not in done]
    print(f'{n} images in {num_shards} shard(s): {len(done)} done, '
          f'{len(todo)} to do; device {device}', flush=True)
    proposer = FeatureClusterProposer(
        num_clusters=args.num_clusters, min_cells=args.min_cells,
        min_size=args.min_size, aspect_range=tuple(args.aspect_range),
        area_ratio_range=tuple(args.area_ratio_range),
        nms_iou=args.nms_iou, max_per_img=args.max_per_img,
        score=args.score, smooth=args.smooth, seed=args.seed)
    if todo:
        backbone = build_backbone(args.arch, args.stage, args.checkpoint,
                                  device, args.seed)
        prep = DetDataPreprocessor(mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375],
                                   bgr_to_rgb=True,
                                   pad_size_divisor=32).to(device)
    from mmselfdet.simdetr import write_shard
    t0 = time.time()
    bar = tqdm(total=sum(min(args.shard_size, n - s * args.shard_size)
                         for s in todo), disable=args.no_progress,
               unit='img', file=sys.stdout)
    num_boxes = num_imgs = 0
    for s in todo:
        idx = range(s * args.shard_size, min(n, (s + 1) * args.shard_size))
        loader = DataLoader(ImagesOnce(ds, idx), batch_size=args.batch_size,
                            num_workers=args.workers,
                            collate_fn=collate_images)
        metas, results, skipped = [], [], []
        with torch.no_grad():
            for data, bad in loader:
                if bad and args.bad_images == 'fail':
                    raise SystemExit(f'stage A stopped (--bad-images fail): '
                                     f'{bad[0]["reason"]}')
                for b in bad:
                    print(f'skipped image id {b["id"]}: {b["reason"]}',
                          flush=True)
                skipped += bad
                bar.update(len(bad))
                if data is None:
                    continue
                data = prep(data, False)
                feat = backbone(data['inputs'])[0]  # (N, C, h, w)
                samples = data['data_samples']
                outs = proposer(feat, [d.metainfo for d in samples])
                for d, o in zip(samples, outs):
                    m = d.metainfo
                    h, w = m['ori_shape'][:2]
                    metas.append(dict(
                        id=int(m['img_id']), width=int(w), height=int(h),
                        file_name=relative_image_name(m['img_path'],
                                                      ds.image_root)))
                    results.append({k: v.cpu().numpy()
                                    for k, v in o.items()})
                    num_boxes += len(o['bboxes'])
                bar.update(len(samples))
                num_imgs += len(samples)
        write_shard(sdir, s, metas, results, skipped)
    bar.close()
    if todo:
        print(f'{num_boxes} boxes for {num_imgs} images in '
              f'{time.time() - t0:.1f} s', flush=True)
    stats = merge_shards(sdir, args.out, info=dict(
        settings, mmselfdet_version=mmselfdet.__version__),
        feature_dtype=args.feature_dtype)
    print(f'wrote {args.out}: {stats}', flush=True)
    if stats['skipped']:
        print(f'{stats["skipped"]} unreadable image(s) left out, listed in '
              f'{args.out} info.skipped_images', flush=True)
    return stats


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
