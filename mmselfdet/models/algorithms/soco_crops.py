# Copyright (c) mmselfdet contributors. All rights reserved.
"""Parts of end-to-end SoCo (METHODS.md §5, our reading) beside the heat
map: the "multiple cropping" (extra crops of each V1 heat-map box whose
online embedding predicts the target V1 embedding of the box,
``loss_soco_crops``) and the boxes of the heat warm-up."""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..utils import crop_patches, map_boxes_batched, view_matrices
from ..utils.photometric import (SOCO_V2_AUGS, apply_photometric,
                                 draw_photometric)
from .base import ViewInputs, ViewSamples

_KEYS = ('num_crops', 'size', 'scale', 'weight', 'flip_prob', 'source',
         'raw_view', 'augs')


def parse_extra_crops(extra_crops: Optional[dict]) -> Optional[dict]:
    """Check ``SoCo(extra_crops=...)`` and fill in its defaults (see
    :class:`~mmselfdet.models.algorithms.soco.SoCo`)."""
    if extra_crops is None:
        return None
    unknown = set(extra_crops) - set(_KEYS)
    if unknown:
        raise KeyError(f'SoCo: unknown extra_crops keys {sorted(unknown)}')
    cfg = dict(
        num_crops=int(extra_crops.get('num_crops', 2)),
        size=int(extra_crops.get('size', 96)),
        scale=tuple(extra_crops.get('scale', (1.0, 1.5))),
        weight=float(extra_crops.get('weight', 1.0)),
        flip_prob=float(extra_crops.get('flip_prob', 0.5)),
        source=extra_crops.get('source', 'raw'),
        raw_view=extra_crops.get('raw_view', 'raw'),
        augs=extra_crops.get('augs', SOCO_V2_AUGS))
    if cfg['source'] not in ('raw', 'v1'):
        raise ValueError(f"SoCo: extra_crops source must be 'raw' or 'v1', "
                         f"got {cfg['source']!r}")
    if cfg['augs'] is not None and set(cfg['augs']) - set(SOCO_V2_AUGS):
        raise KeyError(f'SoCo: unknown extra_crops augs keys '
                       f'{sorted(set(cfg["augs"]) - set(SOCO_V2_AUGS))}')
    if cfg['num_crops'] < 1 or cfg['size'] < 1:
        raise ValueError(f'SoCo: extra_crops num_crops and size must be '
                         f'>= 1, got {extra_crops}')
    return cfg


_WARMUP_MODES = ('whole', 'random')


def parse_heat_warmup(cfg: Optional[dict]) -> Optional[dict]:
    """Check ``SoCo(heat_warmup=...)`` and fill in its defaults."""
    if cfg is None:
        return None
    unknown = set(cfg) - {'iters', 'mode', 'area_ratio_range',
                          'aspect_range'}
    if unknown:
        raise KeyError(f'SoCo: unknown heat_warmup keys {sorted(unknown)}')
    out = dict(iters=int(cfg.get('iters', 0)), mode=cfg.get('mode', 'whole'),
               area_ratio_range=tuple(cfg.get('area_ratio_range',
                                              (0.3, 0.8))),
               aspect_range=tuple(cfg.get('aspect_range', (1 / 3, 3))))
    if out['mode'] not in _WARMUP_MODES or out['iters'] < 0:
        raise ValueError(f'SoCo: heat_warmup needs iters >= 0 and mode in '
                         f'{_WARMUP_MODES}, got {cfg}')
    return out


def warmup_boxes(region: Tensor, cfg: dict, num_boxes: int,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Boxes of the heat warm-up inside ``region`` (B, 4): the region
    itself ((B, 1, 4), ``mode='whole'``) or ``num_boxes`` random boxes each
    ((B, K, 4), ``'random'``: sqrt(box area / region area) uniform in
    ``area_ratio_range``, aspect w / h uniform in ``aspect_range``, as
    SoCo's ``random_generate_props``; a side longer than the region's is cut
    to it, and the box is placed uniformly inside)."""
    if cfg['mode'] == 'whole':
        return region[:, None].clone()
    num = region.size(0)
    gen_device = generator.device if generator is not None else region.device

    def uniform(lo, hi):
        u = torch.rand(num, num_boxes, generator=generator, device=gen_device)
        return (lo + (hi - lo) * u).to(region)

    rw = (region[:, 2] - region[:, 0])[:, None]  # (B, 1)
    rh = (region[:, 3] - region[:, 1])[:, None]
    side = uniform(*cfg['area_ratio_range']) * (rw * rh).sqrt()  # (B, K)
    aspect = uniform(*cfg['aspect_range'])
    w = torch.minimum(side * aspect.sqrt(), rw)
    h = torch.minimum(side / aspect.sqrt(), rh)
    x1 = region[:, :1] + uniform(0, 1) * (rw - w)
    y1 = region[:, 1:2] + uniform(0, 1) * (rh - h)
    return torch.stack([x1, y1, x1 + w, y1 + h], -1)  # (B, K, 4)


class SoCoExtraCrops:
    """Mixin of :class:`SoCo` with the extra-crop loss; uses its
    ``extra_crops`` (from :func:`parse_extra_crops`), ``views``,
    ``data_preprocessor``, ``online_modules``, ``_features``, ``_embed``
    and ``head``."""

    def _crop_source(self, inputs: ViewInputs, data_samples: ViewSamples,
                     v1_boxes: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """The image the extra crops are cut from and each V1 box in its
        pixels: the raw view at ``H_raw @ inv(H_v1)`` of the box, or V1."""
        boxes = torch.cat(v1_boxes)
        if self.extra_crops['source'] == 'v1':
            return inputs[self.views[0]], boxes
        name = self.extra_crops['raw_view']
        if name not in inputs:
            raise KeyError(
                f"SoCo: extra_crops source='raw' needs the view {name!r} "
                f'(SoCoViews(raw_view={name!r}) packed without pixel '
                f"augmentation), the batch has {sorted(inputs)}; or use "
                "extra_crops source='v1'")
        device = boxes.device
        rel = view_matrices(data_samples[name], device) @ torch.linalg.inv(
            view_matrices(data_samples[self.views[0]], device))
        mapped = [map_boxes_batched(b[None], rel[i:i + 1])[0]
                  for i, b in enumerate(v1_boxes)]
        return inputs[name], torch.cat(mapped)

    def _augment(self, patches: Tensor) -> Tensor:
        """Own photometric augmentation of each (normalised) crop, in RGB
        [0, 1] (the configs' preprocessor converts BGR to RGB)."""
        augs = self.extra_crops['augs']
        if augs is None:
            return patches
        prep = self.data_preprocessor
        if getattr(prep, '_enable_normalize', False):
            mean, std = prep.mean.view(1, -1, 1, 1), prep.std.view(1, -1, 1, 1)
        else:
            mean, std = patches.new_zeros(()), patches.new_ones(())
        img = ((patches * std + mean) / 255).clamp(0, 1)  # (R, 3, S, S)
        params = draw_photometric(patches.size(0), augs, patches.device)
        return (apply_photometric(img, params) * 255 - mean) / std

    def _crop_loss(self, inputs: ViewInputs, data_samples: ViewSamples,
                   v1_boxes: List[Tensor],
                   target_v1: Tensor) -> Dict[str, Tensor]:
        """Multiple cropping: online crops of each V1 box predict the target
        V1 embedding of the box."""
        cfg = self.extra_crops
        image, boxes = self._crop_source(inputs, data_samples, v1_boxes)
        batch_idx = torch.cat([
            torch.full((len(b), ), i, device=boxes.device, dtype=torch.long)
            for i, b in enumerate(v1_boxes)
        ])
        losses = []
        for _ in range(cfg['num_crops']):
            patches, inner = crop_patches(image, boxes, batch_idx,
                                          cfg['size'], cfg['scale'],
                                          cfg['flip_prob'])
            if cfg['source'] == 'raw':
                patches = self._augment(patches)
            _, feats = self._features(self.online_modules, patches)
            rois = torch.cat([torch.arange(len(inner), device=inner.device,
                                           dtype=inner.dtype)[:, None],
                              inner], 1)
            online = self._embed(self.online_modules, feats, rois)
            losses.append(self.head.loss(online, target_v1)['loss_byol'])
        return dict(loss_soco_crops=cfg['weight'] * sum(losses) / len(losses))
