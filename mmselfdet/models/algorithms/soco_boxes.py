# Copyright (c) mmselfdet contributors. All rights reserved.
"""Where SoCo's boxes come from, behind one interface: the packed views
(:class:`ViewBoxSource`, SoCo) or the heat map of the network itself
(:class:`HeatMapBoxSource`, end-to-end SoCo, docs/methods.md §5, our reading).

A box source is called once per step with the three views and returns a
:class:`ViewBoxes`: per view and image the boxes in that view's pixels and
their correspondence ids (a V1 box pairs with the V2 / V3 box of the same
id), V1's pair tags when the views chose boxes per pair, and metrics."""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType
from torch import Tensor

from mmselfdet.registry import MODELS
from mmselfdet.structures.box_ops import relative_jitter
from ..utils import (clip_visible, map_boxes_batched, shared_region,
                     view_matrices)


class ViewBoxes(NamedTuple):
    """Boxes of one step (see the module docstring).

    Attributes:
        boxes: per view, per image (n_i, 4) boxes in the view's pixels.
        ids: per view, per image (n_i,) correspondence ids.
        pairs: per image (n_i,) V1 pair tags (1: V1-V2, 2: V1-V3) of
            ``SoCoViews(box_selection='per_pair')``, or None.
        stats: metrics to log.
    """
    boxes: List[List[Tensor]]
    ids: List[List[Tensor]]
    pairs: Optional[List[Tensor]]
    stats: Dict[str, Tensor]


def boxes_and_ids(samples: list) -> Tuple[List[Tensor], List[Tensor]]:
    """Per-image boxes (n_i, 4) and correspondence ids (n_i,)."""
    boxes, ids = [], []
    for s in samples:
        b = get_box_tensor(s.gt_instances.bboxes)
        boxes.append(b)
        if 'instances_ids' not in s.gt_instances:
            raise KeyError(
                'SoCo needs gt_instances.instances_ids (box correspondence '
                'across views): pack the views with PackViewInputs')
        ids.append(torch.as_tensor(s.gt_instances.instances_ids,
                                   device=b.device))
    return boxes, ids


def match_boxes(ids_a: List[Tensor], ids_b: List[Tensor],
                keep_a: Optional[List[Tensor]] = None
                ) -> Tuple[Tensor, Tensor]:
    """Indices into the flattened boxes of two views that are the same
    object (same image, same id); every pair of equal ids counts, so a box
    repeated (padding) weighs more. Rows of ``a`` with ``keep_a`` False
    (per image (n_a,) bool) are never matched.

    One ``nonzero`` over the whole batch (image, id) -- row-major, so the
    pairs come image by image as a per-image loop gives them -- i.e. one
    read of the device per call, not one per image."""
    if not ids_a:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    device = ids_a[0].device
    a, b = torch.cat(list(ids_a)), torch.cat(list(ids_b)).to(device)
    img_a, img_b = (torch.arange(len(ids)).repeat_interleave(torch.tensor(
        [x.numel() for x in ids])).to(device, non_blocking=True)
        for ids in (ids_a, ids_b))  # image of each row, made on the host
    eq = (a[:, None] == b[None, :]) & (img_a[:, None] == img_b[None, :])
    if keep_a is not None:
        eq &= torch.cat([k.to(device) for k in keep_a])[:, None]
    ia, ib = eq.nonzero(as_tuple=True)
    return ia, ib


@MODELS.register_module()
class ViewBoxSource(nn.Module):
    """SoCo: the packed views carry the boxes (selective-search file or
    ground truth, ``SoCoViews``), matched across views by
    ``instances_ids``; V1's ``instances_pairs`` (per-pair selection) when
    present. Reads no feature map; a step without any matched pair is an
    error of the view maker."""
    heat_network = None  # no feature map needed
    allow_no_pairs = False

    def forward(self, imgs: Sequence[Tensor], samples: Sequence[list],
                heat: Optional[Sequence[Tensor]] = None,
                step: Optional[int] = None) -> ViewBoxes:
        boxes, ids = zip(*(boxes_and_ids(s) for s in samples))
        pairs = None
        if samples[0] and 'instances_pairs' in samples[0][0].gt_instances:
            pairs = [torch.as_tensor(s.gt_instances.instances_pairs)
                     for s in samples[0]]
        return ViewBoxes(list(boxes), list(ids), pairs, {})


_WARMUP_MODES = ('whole', 'random')


def parse_heat_warmup(cfg: Optional[dict]) -> Optional[dict]:
    """Check ``heat_warmup`` and fill in its defaults."""
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


@MODELS.register_module()
class HeatMapBoxSource(nn.Module):
    """End-to-end SoCo: K boxes per image from the heat map of backbone
    output ``heat_stage`` on V1 (:class:`HeatMapProposer`, no grad), drawn
    inside the part of V1 that V2 and V3 both see when
    ``restrict_to_views``, mapped into V2 / V3 through the packed
    homographies (``H_v @ inv(H_v1)``); a box whose visible part in a view
    is below ``min_visible`` of its area is left out of that view's pair.
    V1's copies get SoCo's jitter (``jitter=dict(prob, ratio)``).

    Heat options **[ours]** (no reference): ``heat_network`` says whose
    backbone features the caller passes (``'target'``: the target forward
    SoCo runs anyway; ``'online'``: the online V1 forward). During a
    ``heat_warmup=dict(iters, mode)`` (the caller counts the steps) the heat
    is not used: ``mode='whole'`` takes one box per image, the part of V1
    that V2 and V3 both see; ``'random'`` K random boxes inside it
    (:func:`warmup_boxes`); ``heat_warmup`` is logged (1 during it).

    Args:
        proposer (dict): :class:`HeatMapProposer` config.
        views (Sequence[str]): V1, V2, V3 names (for the metric names).
        heat_stage (int): Backbone output the heat is computed from; -1 is
            C5. Defaults to -1.
        restrict_to_views (bool): Draw only where V2 and V3 both see V1.
            Defaults to True.
        min_visible (float): Visible fraction a mapped box needs in V2 /
            V3, in (0, 1]. Defaults to 0.5.
        jitter (dict, optional): ``prob`` and ``ratio`` of the V1 box
            jitter (SoCo: 0.5, 0.1); None switches it off.
        heat_network (str): 'target' or 'online'. Defaults to 'target'.
        heat_warmup (dict, optional): ``iters``, ``mode`` ('whole' /
            'random'), ``area_ratio_range`` ((0.3, 0.8)), ``aspect_range``
            ((1/3, 3)). Defaults to None.
    """
    allow_no_pairs = True  # rare; the caller logs a zero loss

    def __init__(self,
                 proposer: ConfigType,
                 views: Sequence[str] = ('v1', 'v2', 'v3'),
                 heat_stage: int = -1,
                 restrict_to_views: bool = True,
                 min_visible: float = 0.5,
                 jitter: Optional[dict] = dict(prob=0.5, ratio=0.1),
                 heat_network: str = 'target',
                 heat_warmup: Optional[dict] = None) -> None:
        super().__init__()
        self.proposer = MODELS.build(proposer)
        self.views = tuple(views)
        if not 0 < min_visible <= 1:
            raise ValueError(f'SoCo: min_visible must be in (0, 1], got '
                             f'{min_visible}')
        if heat_network not in ('target', 'online'):
            raise ValueError(f"SoCo: heat_network must be 'target' or "
                             f"'online', got {heat_network!r}")
        self.heat_stage = int(heat_stage)
        self.restrict_to_views = bool(restrict_to_views)
        self.min_visible = float(min_visible)
        self.jitter = None if jitter is None else dict(
            prob=float(jitter.get('prob', 0.5)),
            ratio=float(jitter.get('ratio', 0.1)))
        self.heat_network = heat_network
        self.heat_warmup = parse_heat_warmup(heat_warmup)

    def _v1_boxes(self, heat: Tensor, step: Optional[int], mats: List[Tensor],
                  sizes: List[Tuple[int, int]]
                  ) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """(B, K, 4) V1 boxes, (B, K) validity and the proposer's stats."""
        region = shared = None
        if self.restrict_to_views or self.heat_warmup is not None:
            shared = shared_region(mats[0], mats[1:], sizes[1:], sizes[0])
            region = shared if self.restrict_to_views else None
        if self.heat_warmup is None:
            return self.proposer(heat, sizes[0], region)
        if step is None:
            raise ValueError('SoCo: heat_warmup needs the step count')
        warm = step < self.heat_warmup['iters']
        flag = dict(heat_warmup=torch.full((), float(warm),
                                           device=heat.device))
        if not warm:
            boxes, valid, stats = self.proposer(heat, sizes[0], region)
            return boxes, valid, dict(stats, **flag)
        boxes = warmup_boxes(shared, self.heat_warmup,
                             self.proposer.num_boxes)
        return boxes, torch.ones(boxes.shape[:2], dtype=torch.bool,
                                 device=boxes.device), flag

    @torch.no_grad()
    def forward(self, imgs: Sequence[Tensor], samples: Sequence[list],
                heat: Sequence[Tensor], step: Optional[int] = None
                ) -> ViewBoxes:
        """Boxes of the three views.

        Args:
            imgs: V1, V2, V3 batches (N, 3, H, W).
            samples: Their data samples (with ``homography_matrix``).
            heat: The backbone outputs on V1 of the ``heat_network``.
            step: Loss calls so far (for ``heat_warmup``).
        """
        device = imgs[0].device
        sizes = [(img.shape[-1], img.shape[-2]) for img in imgs]
        mats = [view_matrices(s, device) for s in samples]
        boxes, valid, stats = self._v1_boxes(
            heat[self.heat_stage].detach(), step, mats, sizes)
        num, k = valid.shape
        per_view, valid_views = [boxes], [valid]
        for mat, size in zip(mats[1:], sizes[1:]):
            mapped = map_boxes_batched(boxes, mat @ torch.linalg.inv(mats[0]))
            clipped, vis = clip_visible(mapped, size, self.min_visible)
            per_view.append(clipped)
            valid_views.append(valid & vis)
        if self.jitter is not None:
            flat = boxes.reshape(-1, 4)
            moved = relative_jitter(flat, sizes[0], self.jitter['ratio'])
            apply = torch.rand(flat.size(0), device=device) < \
                self.jitter['prob']
            per_view[0] = torch.where(apply[:, None], moved,
                                      flat).view(num, k, 4)
        # per image the valid boxes and their slots (ids): one read of
        # the masks for the whole batch, the selection made on the host
        # and applied by index (a boolean mask per image would be a read
        # of the device each)
        host_valid = torch.stack(valid_views).cpu()  # (V, N, k)
        out_boxes, out_ids = [], []
        for b, v in zip(per_view, host_valid):
            rows = v.flatten().nonzero().flatten()  # (R,) in N * k
            counts = v.sum(1).tolist()
            rows_d = rows.to(device, non_blocking=True)
            out_boxes.append(list(b.reshape(-1, 4)[rows_d].split(counts)))
            out_ids.append(list((rows_d % k).split(counts)))
        stats = dict(stats)
        for name, view_valid in zip(self.views[1:], valid_views[1:]):
            stats[f'heat_visible_{name}'] = (
                view_valid.sum().float() / valid.sum().clamp(min=1).float())
        return ViewBoxes(out_boxes, out_ids, None, stats)
