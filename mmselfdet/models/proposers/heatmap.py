# Copyright (c) mmselfdet contributors. All rights reserved.
"""Object proposals from a network's own feature map (docs/methods.md §5).

Our reading of "semantic-aware localization" (Geng & Huang, CICAI 2023,
abstract only, no code): the activation heat map of the last backbone stage
says where objects are; boxes are cut out of it by center-suppressed
sampling. Everything runs batched on the features' device, without grad.

1. **Heat map** (:meth:`HeatMapProposer.heat_map`): ReLU'd feature map,
   reduced over channels (``reduce='mean'`` or ``'l2'``), bilinearly
   resized to a ``map_size`` working grid, min-max normalised per image.
2. **Center-suppressed sampling** (:meth:`HeatMapProposer.sample`), repeated
   ``num_draws`` times, all images at once:

   a. draw a center with probability proportional to the heat (only inside
      ``region`` when given, e.g. the part of V1 that V2 and V3 see);
   b. threshold the map (a threshold drawn from ``thresholds``, relative to
      the center's heat or absolute) and take the connected region
      (8-connectivity) that contains the center; its bounding box is the
      candidate;
   c. keep the candidate when it passes SoCo's shape filters
      (:func:`~mmselfdet.structures.box_ops.box_shape_masks`) and fewer than
      ``num_boxes`` boxes are kept so far;
   d. suppress (:func:`suppressed_cells`): an **accepted** candidate zeroes
      its box (scaled by ``suppress_scale``) or its region, so that the next
      draw lands elsewhere; a **rejected** one only its seed cell (an
      oversized region at a low threshold often holds an object that a
      higher threshold cuts out; configs/soco/README.md).

   The loop ends after ``num_draws`` draws, or once every image is full or
   out of heat.

3. An image that yields no box gets one fallback box (``region`` or the
   whole image, as SoCo does without proposals), counted in the returned
   statistics; other unfilled slots are marked invalid.

The tensor operations live in :mod:`.heatmap_ops` (re-exported here).
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmselfdet.registry import MODELS
from mmselfdet.structures.box_ops import box_shape_masks

from .heatmap_ops import (REDUCTIONS, SUPPRESSIONS,  # noqa: F401
                          THRESHOLD_MODES, boxes_to_mask, connected_region,
                          dilate3x3, mask_to_boxes, normalized_heat,
                          suppressed_cells)


@MODELS.register_module()
class HeatMapProposer(nn.Module):
    """Boxes from a feature map by center-suppressed sampling of its heat.

    A module without parameters: the algorithm that owns it gives it a
    feature map (for the end-to-end SoCo variant, the target network's C5
    on V1) and gets boxes in that view's pixels. See the module docstring
    for the steps; every choice is an argument.

    Args:
        num_boxes (int): K, boxes per image. Defaults to 4.
        reduce (str): Channel reduction of the heat map, 'mean' or 'l2'.
            Defaults to 'mean'.
        map_size (int | tuple[int, int], optional): (H, W) grid the heat
            map is resized to for sampling (one side for a square); the
            feature map's own size when None. Boxes are in grid cells of
            this map, scaled to image pixels. Defaults to 56 (V1 / 4 for a
            224 view).
        thresholds (Sequence[float]): Thresholds for the connected region;
            each draw uses one, drawn uniformly. Defaults to (0.5, ).
        threshold_mode (str): 'relative' (region where the heat is at least
            ``t`` times the center's heat) or 'absolute' (heat >= ``t``).
            Defaults to 'relative'.
        num_draws (int, optional): Centers drawn per image; ``2 * num_boxes``
            when None.
        suppress (str): After a draw whose candidate passes the filters,
            zero the heat 'box' (inside the candidate box scaled by
            ``suppress_scale`` about its center) or 'region' (exactly the
            connected region); a rejected draw zeroes only its seed cell.
            'none' (the ablation: independent draws) zeroes nothing.
            Defaults to 'box'.
        suppress_scale (float): Scale of the suppressed box. Defaults to 1.
        min_size (float, optional): Minimum box width and height in image
            pixels (SoCo: 32 on ImageNet images). Defaults to None.
        aspect_range (tuple[float, float], optional): ``w / h`` range.
            Defaults to (1/3, 3) (SoCo).
        area_ratio_range (tuple[float, float], optional):
            ``sqrt(box area / image area)`` range (SoCo: (0.3, 0.8)).
            Defaults to None.
        max_fill_iters (int, optional): Cap on flood-fill steps.
        center_suppress (float): A second reading of "center-suppressed
            sampling" (issue 16): suppress the image-centre bias of the
            heat by multiplying it with ``1 - center_suppress * G``, ``G``
            a Gaussian of std ``center_sigma`` (fraction of the map side)
            centred on the map, then min-max normalising again; in [0, 1],
            0 (default) switches it off.
        center_sigma (float): Std of that Gaussian. Defaults to 0.25.
    """

    def __init__(self,
                 num_boxes: int = 4,
                 reduce: str = 'mean',
                 map_size: Union[int, Sequence[int], None] = 56,
                 thresholds: Sequence[float] = (0.5, ),
                 threshold_mode: str = 'relative',
                 num_draws: Optional[int] = None,
                 suppress: str = 'box',
                 suppress_scale: float = 1.0,
                 min_size: Optional[float] = None,
                 aspect_range: Optional[Tuple[float, float]] = (1 / 3, 3),
                 area_ratio_range: Optional[Tuple[float, float]] = None,
                 max_fill_iters: Optional[int] = None,
                 center_suppress: float = 0.0,
                 center_sigma: float = 0.25) -> None:
        super().__init__()
        if num_boxes < 1:
            raise ValueError(f'HeatMapProposer: num_boxes must be >= 1, got '
                             f'{num_boxes}')
        if reduce not in REDUCTIONS:
            raise ValueError(f'HeatMapProposer: reduce must be one of '
                             f'{REDUCTIONS}, got {reduce!r}')
        if threshold_mode not in THRESHOLD_MODES:
            raise ValueError(f'HeatMapProposer: threshold_mode must be one of '
                             f'{THRESHOLD_MODES}, got {threshold_mode!r}')
        if suppress not in SUPPRESSIONS:
            raise ValueError(f'HeatMapProposer: suppress must be one of '
                             f'{SUPPRESSIONS}, got {suppress!r}')
        thresholds = tuple(float(t) for t in thresholds)
        if not thresholds or not all(0 <= t <= 1 for t in thresholds):
            raise ValueError(f'HeatMapProposer: thresholds must be a non-empty '
                             f'list of values in [0, 1], got {thresholds}')
        if suppress_scale <= 0:
            raise ValueError(f'HeatMapProposer: suppress_scale must be > 0, '
                             f'got {suppress_scale}')
        if isinstance(map_size, int):
            map_size = (map_size, map_size)
        if map_size is not None and (len(map_size) != 2 or min(map_size) < 1):
            raise ValueError(f'HeatMapProposer: map_size must be a positive '
                             f'int or (H, W), got {map_size}')
        self.num_boxes = int(num_boxes)
        self.reduce = reduce
        self.map_size = None if map_size is None else tuple(map_size)
        self.thresholds = thresholds
        self.threshold_mode = threshold_mode
        self.num_draws = int(num_draws or 2 * num_boxes)
        if self.num_draws < 1:
            raise ValueError('HeatMapProposer: num_draws must be >= 1')
        self.suppress = suppress
        self.suppress_scale = float(suppress_scale)
        self.min_size = min_size
        self.aspect_range = aspect_range
        self.area_ratio_range = area_ratio_range
        self.max_fill_iters = max_fill_iters
        if not 0 <= center_suppress <= 1 or center_sigma <= 0:
            raise ValueError(f'HeatMapProposer: center_suppress must be in '
                             f'[0, 1] and center_sigma > 0, got '
                             f'{center_suppress}, {center_sigma}')
        self.center_suppress = float(center_suppress)
        self.center_sigma = float(center_sigma)

    def heat_map(self, feat: Tensor) -> Tensor:
        """(B, C, h, w) features -> (B, H, W) heat in [0, 1] on the
        sampling grid."""
        heat = normalized_heat(feat, self.reduce, self.map_size)
        if self.center_suppress == 0:
            return heat
        height, width = heat.shape[-2:]
        ys = (torch.arange(height, device=heat.device, dtype=heat.dtype) +
              0.5) / height - 0.5
        xs = (torch.arange(width, device=heat.device, dtype=heat.dtype) +
              0.5) / width - 0.5
        d2 = ys[:, None]**2 + xs[None, :]**2  # (H, W)
        prior = 1 - self.center_suppress * torch.exp(
            -d2 / (2 * self.center_sigma**2))
        heat = heat * prior  # (B, H, W)
        lo = heat.amin((1, 2), keepdim=True)
        span = (heat.amax((1, 2), keepdim=True) - lo).clamp(min=1e-12)
        return (heat - lo) / span

    def _region_mask(self, region: Optional[Tensor], scale: Tensor,
                     height: int, width: int, num: int,
                     device: torch.device) -> Tensor:
        if region is None:
            return torch.ones(num, height, width, dtype=torch.bool,
                              device=device)
        grid = region.to(device=device, dtype=torch.float32) / scale
        mask = boxes_to_mask(grid, height, width)
        # a region thinner than one cell still allows its nearest cell
        centers = ((grid[:, 1] + grid[:, 3]) / 2).long().clamp(
            0, height - 1) * width + ((grid[:, 0] + grid[:, 2]) / 2).long(
            ).clamp(0, width - 1)
        flat = mask.flatten(1)
        flat[torch.arange(num, device=device), centers] = True
        return flat.view(num, height, width)

    @torch.no_grad()
    def sample(self, heat: Tensor, img_wh: Tuple[float, float],
               region: Optional[Tensor] = None,
               generator: Optional[torch.Generator] = None
               ) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """Center-suppressed sampling of ``num_boxes`` boxes per image.

        Args:
            heat (Tensor): (B, H, W) heat in [0, 1] (:meth:`heat_map`).
            img_wh (tuple): ``(width, height)`` of the image the boxes are
                for (the heat map spans the whole image).
            region (Tensor, optional): (B, 4) x1y1x2y2 image-pixel region
                per image; centers are drawn only inside it and the fallback
                box is it.
            generator (torch.Generator, optional): For the draws.

        Returns:
            tuple: ``boxes`` (B, K, 4) image pixels, ``valid`` (B, K) bool
            (slot holds a box), and ``stats``: ``heat_boxes`` (mean boxes
            per image from the heat), ``heat_fallback`` (fraction of images
            given the fallback box), ``heat_draws`` (sampling rounds run:
            ``num_draws``, or fewer when every image is full or out of
            heat).
        """
        num, height, width = heat.shape
        device = heat.device
        img_w, img_h = float(img_wh[0]), float(img_wh[1])
        scale = torch.tensor([img_w / width, img_h / height] * 2,
                             device=device)
        rows = torch.arange(num, device=device)
        allowed = self._region_mask(region, scale, height, width, num, device)
        live = heat.clone().float() * allowed
        thresholds = torch.tensor(self.thresholds, device=device)
        boxes = heat.new_zeros(num, self.num_boxes, 4)
        count = torch.zeros(num, dtype=torch.long, device=device)
        draws = 0
        for draws in range(1, self.num_draws + 1):
            flat = live.flatten(1)
            exhausted = flat.sum(1) <= 1e-6
            # exhausted rows draw uniformly in the allowed cells; their
            # candidates are discarded below
            probs = torch.where(exhausted[:, None], allowed.flatten(1).float(),
                                flat)
            seeds = torch.multinomial(probs, 1, generator=generator)[:, 0]
            pick = torch.randint(len(self.thresholds), (num, ),
                                 generator=generator,
                                 device=generator.device
                                 if generator is not None else device)
            thr = thresholds[pick.to(device)]
            if self.threshold_mode == 'relative':
                thr = thr * heat.flatten(1)[rows, seeds]
            binary = heat >= thr[:, None, None]
            regions = connected_region(binary, seeds, self.max_fill_iters)
            cells = mask_to_boxes(regions)
            cand = cells * scale
            ok = ~exhausted
            for mask in box_shape_masks(cand, (img_w, img_h), self.min_size,
                                        self.aspect_range,
                                        self.area_ratio_range).values():
                ok &= mask
            take = ok & (count < self.num_boxes)
            slot = count.clamp(max=self.num_boxes - 1)
            boxes[rows, slot] = torch.where(take[:, None], cand,
                                            boxes[rows, slot])
            count += take.long()
            # accepted: region / box; rejected: the seed cell only; 'none':
            # nothing (the next draw is independent of this one)
            live = live.masked_fill(
                suppressed_cells(self.suppress, regions, cells, seeds, ok,
                                 self.suppress_scale), 0.0)
            # one device sync per draw: stop when every image is full or
            # out of heat
            done = (count >= self.num_boxes) | (live.flatten(1).sum(1) <=
                                                 1e-6)
            if bool(done.all()):
                break
        valid = torch.arange(self.num_boxes, device=device)[None] < count[:,
                                                                         None]
        fallback = count == 0
        if region is None:
            whole = heat.new_tensor([0.0, 0.0, img_w, img_h]).expand(num, 4)
        else:
            whole = region.to(heat)
        boxes[:, 0] = torch.where(fallback[:, None], whole, boxes[:, 0])
        valid[:, 0] = True
        stats = dict(heat_boxes=count.float().mean(),
                     heat_fallback=fallback.float().mean(),
                     heat_draws=heat.new_tensor(float(draws)))
        return boxes, valid, stats

    def forward(self, feat: Tensor, img_wh: Tuple[float, float],
                region: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """:meth:`heat_map` then :meth:`sample`."""
        return self.sample(self.heat_map(feat), img_wh, region, generator)

    def extra_repr(self) -> str:
        return (f'num_boxes={self.num_boxes}, reduce={self.reduce!r}, '
                f'map_size={self.map_size}, thresholds={self.thresholds}, '
                f'threshold_mode={self.threshold_mode!r}, '
                f'num_draws={self.num_draws}, suppress={self.suppress!r}, '
                f'suppress_scale={self.suppress_scale}, '
                f'min_size={self.min_size}, '
                f'aspect_range={self.aspect_range}, '
                f'area_ratio_range={self.area_ratio_range}, '
                f'center_suppress={self.center_suppress}')


__all__ = ['HeatMapProposer', 'normalized_heat', 'connected_region',
           'dilate3x3', 'suppressed_cells', 'mask_to_boxes', 'boxes_to_mask']
