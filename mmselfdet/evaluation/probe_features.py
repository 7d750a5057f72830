# Copyright (c) mmselfdet contributors. All rights reserved.
"""Frozen-backbone features for the probe (:mod:`.probe`).

Data: a COCO-style json is read into samples, either one per ground-truth
box (``crops``: the box's pixels, optionally widened by ``context`` pixels
and clipped to the image, resized to a square; label = its category) or
one per image (``images``: the whole image resized to a square; label =
the set of categories present). Pixels are RGB and normalised with the
ImageNet mean / std the benchmark detector configs use.

Backbone: an mmdet ``ResNet`` in eval mode (BN running statistics as
stored), from an exported mmdet checkpoint (``backbone.*`` keys), from a
raw pretraining checkpoint (its transfer set, through
:mod:`mmselfdet.export`), or ``'random'`` (mmdet's default init, seeded).
Features: global-average-pooled stage outputs (C2..C5), concatenated.
"""
import math
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

# RGB, as the benchmark detector configs' data preprocessor (mmdet's).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
STAGES = (2, 3, 4, 5)  # C2..C5 = mmdet ResNet out_indices 0..3


class ProbeError(RuntimeError):
    """Bad probe input (the message names the file or key)."""


def default_img_prefix(ann_file: str) -> str:
    """Image folder of ``ann_file`` in the toy layout.

    ``ROOT/annotations/SPLIT.json`` -> ``ROOT/SPLIT/``; for a derived file
    (``train_10pct_seed0.json``) the part of the stem before the first
    ``_`` is tried too.
    """
    root = osp.dirname(osp.dirname(osp.abspath(ann_file)))
    stem = osp.splitext(osp.basename(ann_file))[0]
    for name in (stem, stem.split('_')[0]):
        if osp.isdir(osp.join(root, name)):
            return osp.join(root, name)
    raise ProbeError(f'no image folder for {ann_file} (looked for '
                     f'{osp.join(root, stem)}): pass the image prefix')


def load_coco(ann_file: str) -> dict:
    """Read a COCO json: ``categories`` (sorted ids), ``images`` and their
    annotations (``iscrowd`` and empty boxes dropped)."""
    import json
    if not osp.isfile(ann_file):
        raise ProbeError(f'annotation file "{ann_file}" not found')
    with open(ann_file) as f:
        data = json.load(f)
    images = data.get('images') or []
    anns = [a for a in data.get('annotations') or []
            if not a.get('iscrowd', 0) and a['bbox'][2] > 0
            and a['bbox'][3] > 0]
    if not images or not anns:
        raise ProbeError(f'{ann_file}: empty annotation set ({len(images)} '
                         f'images, {len(anns)} usable annotations)')
    per_image: Dict[int, list] = {img['id']: [] for img in images}
    for a in anns:
        if a['image_id'] not in per_image:
            raise ProbeError(f'{ann_file}: annotation {a.get("id")} refers '
                             f'to unknown image_id {a["image_id"]}')
        per_image[a['image_id']].append(a)
    cat_ids = sorted(c['id'] for c in data.get('categories') or [])
    return dict(file=ann_file, cat_ids=cat_ids, images=images,
                anns=per_image)


def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB image; a clear error on a missing / bad file."""
    import cv2
    if not osp.isfile(path):
        raise ProbeError(f'image file "{path}" not found')
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ProbeError(f'image file "{path}" cannot be read as an image')
    return np.ascontiguousarray(img[..., ::-1])


def crop_box(img: np.ndarray, bbox: Sequence[float],
             context: int = 0) -> np.ndarray:
    """The pixels of a COCO ``[x, y, w, h]`` box widened by ``context`` px
    on every side (outer integer bounds), clipped to the image."""
    h, w = img.shape[:2]
    x, y, bw, bh = bbox
    x0 = max(0, math.floor(x - context))
    y0 = max(0, math.floor(y - context))
    x1 = min(w, math.ceil(x + bw + context))
    y1 = min(h, math.ceil(y + bh + context))
    if x1 <= x0 or y1 <= y0:
        raise ProbeError(f'box {list(bbox)} lies outside its {w}x{h} image')
    return img[y0:y1, x0:x1]


def make_samples(coco: dict, img_prefix: str, mode: str, size: int,
                 context: int = 0, cat_ids: Optional[List[int]] = None
                 ) -> Tuple[Tensor, Tensor, Tensor]:
    """Resized uint8 samples, labels and the image id of each sample.

    Args:
        coco: :func:`load_coco` output.
        img_prefix: Folder of the json's ``file_name`` entries.
        mode: ``'crops'`` or ``'images'``.
        size: Side of the square every sample is resized to.
        context: Extra pixels around each box (``crops``).
        cat_ids: Category ids in label order (default: the json's).

    Returns:
        (N, 3, size, size) uint8 RGB, labels ((N,) long class indices for
        ``crops``, (N, C) float multi-hot for ``images``), (N,) image ids.
    """
    import cv2
    if mode not in ('crops', 'images'):
        raise ProbeError(f'unknown mode "{mode}" (crops or images)')
    cat_ids = cat_ids or coco['cat_ids']
    index = {c: i for i, c in enumerate(cat_ids)}
    pixels, labels, groups = [], [], []
    for info in coco['images']:
        anns = coco['anns'][info['id']]
        if mode == 'crops' and not anns:
            continue
        img = read_image(osp.join(img_prefix, info['file_name']))
        for a in anns:
            if a['category_id'] not in index:
                raise ProbeError(f'{coco["file"]}: category_id '
                                 f'{a["category_id"]} is not in {cat_ids}')
        if mode == 'crops':
            parts = [crop_box(img, a['bbox'], context) for a in anns]
            labels += [index[a['category_id']] for a in anns]
        else:
            parts = [img]
            hot = np.zeros(len(cat_ids), np.float32)
            hot[[index[a['category_id']] for a in anns]] = 1
            labels.append(hot)
        for p in parts:
            pixels.append(cv2.resize(p, (size, size),
                                     interpolation=cv2.INTER_LINEAR))
            groups.append(info['id'])
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)  # (N,3,S,S)
    y = (torch.tensor(labels, dtype=torch.long) if mode == 'crops' else
         torch.from_numpy(np.stack(labels)))
    return x.contiguous(), y, torch.tensor(groups)


def backbone_state_dict(checkpoint: str) -> Dict[str, Tensor]:
    """ResNet weights (mmdet ``ResNet`` names) of a checkpoint.

    An exported mmdet checkpoint gives its ``backbone.*`` keys. A raw
    pretraining checkpoint (its config in ``meta['cfg']``) goes through the
    exporter's transfer set (:func:`mmselfdet.export.export_state_dict`).
    A C4 export's ``roi_head.shared_head.layer4.*`` is res5.
    """
    from mmselfdet.export import (TRANSFER_SETS, export_state_dict,
                                  load_checkpoint_file, method_of)
    if not osp.isfile(checkpoint):
        raise ProbeError(f'checkpoint "{checkpoint}" not found')
    ckpt = load_checkpoint_file(checkpoint)
    sd = ckpt.get('state_dict', ckpt)
    if (ckpt.get('meta') or {}).get('cfg'):
        try:
            method = method_of(ckpt, checkpoint)
        except Exception as e:  # the stored config text does not load
            raise ProbeError(f'{checkpoint}: cannot read model.type from '
                             f'meta["cfg"] ({e})') from e
        if method in TRANSFER_SETS:
            try:
                sd = export_state_dict(
                    sd, method, parts=['backbone.', 'roi_head.shared_head.'])
            except (KeyError, ValueError) as e:
                raise ProbeError(f'{checkpoint}: {e}') from e
    head = 'roi_head.shared_head.layer4.'
    out = {k[len('backbone.'):]: v for k, v in sd.items()
           if k.startswith('backbone.')}
    if not any(k.startswith('layer4.') for k in out):
        out.update({'layer4.' + k[len(head):]: v for k, v in sd.items()
                    if k.startswith(head)})
    if not out:
        firsts = sorted({k.split('.')[0] for k in sd})
        raise ProbeError(f'{checkpoint}: no "backbone.*" keys (its keys '
                         f'start with {firsts})')
    return out


def build_backbone(checkpoint: str = 'random', depth: Optional[int] = None,
                   zero_init_residual: bool = True,
                   seed: int = 0) -> torch.nn.Module:
    """A frozen mmdet ``ResNet`` (eval mode, C2..C5 outputs).

    Args:
        checkpoint: A checkpoint path or ``'random'``.
        depth: ResNet depth; read from a checkpoint's keys, 18 for random.
        zero_init_residual: mmdet's zero init of each block's last BN
            (``'random'`` only; mmdet's default is True).
        seed: Seed of the random init.
    """
    from mmdet.models.backbones import ResNet

    from mmselfdet.export.exporter import ExportError, resnet_depth_of
    sd = None
    if checkpoint != 'random':
        sd = backbone_state_dict(checkpoint)
        try:
            found = resnet_depth_of(sd)
        except ExportError as e:
            raise ProbeError(f'{checkpoint}: {e}') from e
        if depth not in (None, found):
            raise ProbeError(f'{checkpoint} holds a ResNet-{found}, '
                             f'not the requested depth {depth}')
        depth = found
    torch.manual_seed(seed)
    model = ResNet(depth=depth or 18, out_indices=(0, 1, 2, 3),
                   zero_init_residual=zero_init_residual)
    if sd is None:
        # mmengine reports every initialised parameter through its current
        # logger (stdout once a runner logger exists): keep the probe's
        # stdout for its one JSON line
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    else:
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if 'num_batches_tracked' not in k]
        if missing or unexpected:
            raise ProbeError(f'{checkpoint}: backbone keys do not fit a '
                             f'ResNet-{depth}: missing {missing[:5]}, '
                             f'unexpected {unexpected[:5]}')
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def extract_features(model: torch.nn.Module, pixels: Tensor,
                     stages: Sequence[int] = (5, ), batch_size: int = 128,
                     log: Optional[Callable[[str], None]] = None,
                     name: str = '') -> Tensor:
    """Pooled features of uint8 RGB ``pixels`` (N, 3, H, W).

    Returns:
        (N, D) float32: the global average of each selected stage's output
        (2..5 = C2..C5), concatenated in ``stages`` order.
    """
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ProbeError(f'unknown stages {bad}; choose from {STAGES}')
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out, start, n = [], time.time(), len(pixels)
    for i in range(0, n, batch_size):
        x = (pixels[i:i + batch_size].float() - mean) / std  # (B, 3, H, W)
        maps = model(x)
        out.append(torch.cat([maps[s - 2].mean(dim=(2, 3)) for s in stages],
                             dim=1))  # (B, D)
        if log is not None:
            done = min(i + batch_size, n)
            log(f'features {name}: {done}/{n} ({time.time() - start:.1f} s)')
    return torch.cat(out)  # (N, D)
