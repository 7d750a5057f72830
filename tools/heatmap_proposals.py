# Copyright (c) mmselfdet contributors. All rights reserved.
"""Heat-map proposals of a (pretrained) backbone, in the proposal format.

The end-to-end SoCo variant draws its boxes inside the model at every step;
this tool runs the same :class:`~mmselfdet.models.HeatMapProposer` offline,
so that its boxes can be scored beside selective search
(``tools/eval_proposals.py``) or feed any proposal consumer (object-aware
crops, SoCo) through ``UnlabeledDataset(proposal_file=...)``.

Run from the repository root::

    # boxes of the end-to-end toy run's target network on toy val
    python tools/heatmap_proposals.py \\
        configs/soco/soco-e2e_r18_fpn_1xb32-150it_toy.py data/toy/val \\
        --ann-file data/toy/annotations/val.json \\
        --checkpoint work_dirs/soco-e2e/iter_150.pth --out heat_val.json
    python tools/eval_proposals.py heat_val.json data/toy/annotations/val.json

The config gives the backbone, ``model.heat_stage`` and the proposer's
settings (``model.proposer``, or :class:`HeatMapProposer`'s defaults when
the config has none, e.g. a MoCo config); ``--thresholds`` and
``--num-boxes`` override them. Each image is resized to ``--size`` x
``--size`` (the V1 view: aspect not kept), normalised with the config's
``data_preprocessor`` mean / std, and its boxes are scaled back to the
image. With several thresholds the proposer samples once per threshold and
the boxes are interleaved by draw order (score = rank). Unreadable images
are listed in ``info['failed_images']`` and get no boxes.

The run goes through the sharded driver
(:func:`mmselfdet.datasets.proposals.driver.run_sharded`): finished shards
of ``--shard-size`` images are kept in ``OUT.parts/`` and a rerun resumes
there. The draws of a batch are seeded by ``--seed`` and the batch's first
image id, so a resumed run writes the same boxes as an uninterrupted one
(batches never cross a shard: ``--batch-size`` and ``--shard-size`` are
both recorded in ``info['parameters']``).
"""
from __future__ import annotations

import argparse
import math
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from mmselfdet.datasets.proposals import (  # noqa: E402
    list_images,
    read_image_bgr,
)
from mmselfdet.datasets.proposals.driver import (  # noqa: E402
    parts_dir,
    remove_parts,
    run_sharded,
    write_records,
)
from mmselfdet.registry import MODELS  # noqa: E402
from mmselfdet.version import __version__  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='pretraining config (gives the backbone)')
    p.add_argument('img_root', help='image folder')
    p.add_argument('--ann-file', default='',
                   help='COCO json or list file (as UnlabeledDataset)')
    p.add_argument('--out', required=True, help='output proposal json')
    p.add_argument('--checkpoint', default=None,
                   help='pretraining checkpoint (random init when absent)')
    p.add_argument('--net', choices=('target', 'online'), default='target',
                   help='which backbone of the checkpoint (target: the '
                   'momentum encoder, what the end-to-end variant uses)')
    p.add_argument('--size', type=int, default=None,
                   help='square input side (default: the V1 size of the '
                   "config's SoCoViews, else 224)")
    p.add_argument('--num-boxes', type=int, default=100,
                   help='boxes per image at most')
    p.add_argument('--thresholds', type=float, nargs='+', default=None,
                   help="override the proposer's thresholds")
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--shard-size', type=int, default=256,
                   help='images per resumable shard (default: %(default)s)')
    p.add_argument('--device', default=None,
                   help='cuda when available, else cpu')
    p.add_argument('--seed', type=int, default=0,
                   help='seeds the draws and, without --checkpoint, the '
                   'random init')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   default=None, help='override config keys')
    return p.parse_args(argv)


def _v1_size(cfg: Config) -> int:
    def walk(node):
        if isinstance(node, dict):
            if node.get('type') == 'SoCoViews':
                return node.get('v1_size', 224)
            for v in node.values():
                found = walk(v)
                if found is not None:
                    return found
        elif isinstance(node, (list, tuple)):
            for v in node:
                found = walk(v)
                if found is not None:
                    return found
        return None

    return int(walk(cfg.get('train_dataloader', {})) or 224)


def build_parts(cfg: Config, checkpoint: Optional[str], net: str,
                device: torch.device):
    """The backbone (eval mode) to take the heat from, and the proposer
    config and heat stage of ``cfg``."""
    model = MODELS.build(cfg.model)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    if net == 'target' and hasattr(model, 'target_net'):
        target = model.target_net.module  # a BoxEncoder (or older tuple)
        backbone = (target.backbone if hasattr(target, 'backbone') else
                    target[0])
    else:
        backbone = model.backbone
    backbone.to(device).eval()
    proposer_cfg = dict(cfg.model.get('proposer') or
                        dict(type='HeatMapProposer'))
    return backbone, proposer_cfg, int(cfg.model.get('heat_stage', -1))


class HeatMapBatches:
    """The driver's batch function: images -> records of heat-map boxes.

    Args:
        backbone: Backbone in eval mode.
        proposers: One :class:`HeatMapProposer` per threshold.
        heat_stage (int): Backbone output the heat is taken from.
        size (int): Square input side.
        num_boxes (int): Boxes per image at most.
        norm (tuple): ``(mean, std, to_rgb)`` of the data preprocessor.
        seed (int): Seeds each batch's draws with its first image id.
        device (torch.device): Where the network runs.
    """

    def __init__(self, backbone, proposers, heat_stage: int, size: int,
                 num_boxes: int, norm: tuple, seed: int,
                 device: torch.device) -> None:
        self.backbone, self.proposers = backbone, proposers
        self.heat_stage, self.size, self.num_boxes = heat_stage, size, num_boxes
        self.mean, self.std, self.to_rgb = norm
        self.seed, self.device = seed, device
        self.per_thr = math.ceil(num_boxes / len(proposers))

    def __call__(self, images: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        size = self.size
        records, batch, rows_of = [], [], []
        for im in images:
            rec = dict(id=im['id'], file_name=im['file_name'],
                       width=int(im.get('width') or 0),
                       height=int(im.get('height') or 0), bboxes=[],
                       scores=None, failed=None)
            records.append(rec)
            try:
                img = read_image_bgr(im['path'])
            except ValueError as e:  # ImageLoadError: also an OSError
                rec['failed'] = str(e)
                continue
            rec['height'], rec['width'] = img.shape[:2]
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
            if self.to_rgb:
                img = img[..., ::-1]
            batch.append((img.astype(np.float32) - self.mean) / self.std)
            rows_of.append(rec)
        if not batch:
            return records
        gen = torch.Generator(device=self.device).manual_seed(
            self.seed * 1_000_003 + int(images[0]['id']))
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)  # (B,3,S,S)
        with torch.no_grad():
            feat = self.backbone(x.to(self.device))[self.heat_stage]
            drawn = [p(feat, (size, size), generator=gen)
                     for p in self.proposers]
        for j, rec in enumerate(rows_of):
            rows = []  # the thresholds interleaved by draw order
            for k in range(self.per_thr):
                for boxes, valid, _ in drawn:
                    if bool(valid[j, k]):
                        rows.append(boxes[j, k].cpu().numpy())
            rows = np.asarray(rows[:self.num_boxes], np.float32).reshape(-1, 4)
            scale = np.array([rec['width'] / size, rec['height'] / size] * 2,
                             np.float32)
            rec['bboxes'] = (rows * scale).tolist()
        return records


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import mmselfdet  # noqa: F401  (registers modules, safe checkpoints)
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    size = args.size or _v1_size(cfg)
    # --seed also fixes a random init (no --checkpoint): reproducible boxes
    torch.manual_seed(args.seed)
    backbone, proposer_cfg, heat_stage = build_parts(cfg, args.checkpoint,
                                                     args.net, device)
    thresholds = tuple(args.thresholds or proposer_cfg.get('thresholds',
                                                           (0.5, )))
    per_thr = math.ceil(args.num_boxes / len(thresholds))
    proposers = [
        MODELS.build(dict(proposer_cfg, thresholds=(thr, ), num_boxes=per_thr,
                          num_draws=2 * per_thr)) for thr in thresholds
    ]
    pre = cfg.model.get('data_preprocessor', {})
    norm = (np.asarray(pre.get('mean', [123.675, 116.28, 103.53]), np.float32),
            np.asarray(pre.get('std', [58.395, 57.12, 57.375]), np.float32),
            bool(pre.get('bgr_to_rgb', True)))
    images = list_images(args.img_root, args.ann_file)
    params = dict(proposer=proposer_cfg, thresholds=list(thresholds),
                  heat_stage=heat_stage, size=size, net=args.net,
                  num_boxes=args.num_boxes, seed=args.seed,
                  batch_size=args.batch_size, shard_size=args.shard_size)
    header = dict(parameters=params, checkpoint=args.checkpoint,
                  config=args.config, cfg_options=args.cfg_options,
                  images=[args.img_root, args.ann_file, len(images)])
    start = time.perf_counter()
    records = run_sharded(
        images, HeatMapBatches(backbone, proposers, heat_stage, size,
                               args.num_boxes, norm, args.seed, device),
        parts_dir(args.out), header, shard_size=args.shard_size,
        batch_size=args.batch_size, desc='heat-map proposals')
    seconds = time.perf_counter() - start
    info = write_records(args.out, records, dict(
        algorithm='heat_map',
        implementation='mmselfdet.models.HeatMapProposer',
        parameters=params, checkpoint=args.checkpoint, config=args.config,
        seconds=round(seconds, 3), device=str(device),
        mmselfdet_version=__version__,
        source=dict(img_root=args.img_root, ann_file=args.ann_file or None,
                    num_images=len(images))))
    remove_parts(parts_dir(args.out))
    failed = info['failed_images']
    print(f'wrote {args.out}: {len(records)} images, '
          f'{info["num_proposals"]} boxes, {seconds:.2f} s '
          f'({seconds / max(len(images), 1) * 1000:.1f} ms/image on {device}); '
          f'{len(failed)} unreadable')
    if failed:
        print('unreadable images:\n  ' + '\n  '.join(failed[:20]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
