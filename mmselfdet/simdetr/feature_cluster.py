# Copyright (c) mmselfdet contributors. All rights reserved.
"""Object proposals from a backbone's feature map (SimDETR stage A).

Per image, the locations of the last feature map are clustered by k-means at
several ``k``; every connected component of every cluster becomes a box,
boxes are filtered by shape and de-duplicated, and each box gets the mean
feature of its component (masked average pooling). Nothing here is
learned; :class:`FeatureClusterProposer` is a parameter-free module so a
config can build it.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from mmselfdet.registry import MODELS
from mmselfdet.structures.box_ops import box_shape_masks

__all__ = ['kmeans_locations', 'cluster_components', 'FeatureClusterProposer']


def kmeans_locations(feats: Tensor,
                     k: int,
                     iters: int = 20,
                     generator: Optional[torch.Generator] = None
                     ) -> Tuple[Tensor, Tensor]:
    """Cosine k-means of feature locations (k-means++ seeding).

    Args:
        feats (Tensor): (L, C) features, one row per location.
        k (int): Number of clusters; clamped to ``L``.
        iters (int): Lloyd iterations. Defaults to 20.
        generator (torch.Generator, optional): Seeded generator on
            ``feats.device`` for the seeding; fixes the result.

    Returns:
        tuple[Tensor, Tensor]: labels (L,) long and centres (k, C)
        (unit-norm).
    """
    x = F.normalize(feats.float(), dim=1)  # (L, C)
    n = x.shape[0]
    k = max(1, min(int(k), n))
    first = torch.randint(n, (1, ), generator=generator, device=x.device)
    centres = [x[first[0]]]
    dist = (1 - x @ centres[0]).clamp(min=0)  # (L,)
    for _ in range(1, k):
        if float(dist.sum()) <= 0:  # all remaining points coincide
            idx = torch.randint(n, (1, ), generator=generator,
                                device=x.device)
        else:
            idx = torch.multinomial(dist, 1, generator=generator)
        centres.append(x[idx[0]])
        dist = torch.minimum(dist, (1 - x @ centres[-1]).clamp(min=0))
    c = torch.stack(centres)  # (k, C)
    labels = (x @ c.t()).argmax(1)
    for _ in range(iters):
        onehot = F.one_hot(labels, k).to(x.dtype)  # (L, k)
        sums = onehot.t() @ x  # (k, C)
        empty = onehot.sum(0) == 0
        c = torch.where(empty[:, None], c, F.normalize(sums, dim=1))
        new = (x @ c.t()).argmax(1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels, c


def cluster_components(labels: np.ndarray,
                       connectivity: int = 8,
                       min_cells: int = 1) -> List[np.ndarray]:
    """Connected components of every cluster of a label map.

    Args:
        labels (np.ndarray): (h, w) integer cluster map.
        connectivity (int): 4 or 8. Defaults to 8.
        min_cells (int): Components smaller than this are dropped.

    Returns:
        list[np.ndarray]: One (h, w) bool mask per component, clusters in
        ascending id, components in scan order.
    """
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4
                                                  else 2)
    masks = []
    for c in np.unique(labels):
        comp, num = ndimage.label(labels == c, structure=structure)
        for i in range(1, num + 1):
            m = comp == i
            if m.sum() >= min_cells:
                masks.append(m)
    return masks


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(M, h, w) bool -> (M, 4) x1y1x2y2 in cell units (end exclusive)."""
    rows, cols = masks.any(2), masks.any(1)  # (M, h), (M, w)
    y1 = rows.argmax(1)
    y2 = rows.shape[1] - rows[:, ::-1].argmax(1)
    x1 = cols.argmax(1)
    x2 = cols.shape[1] - cols[:, ::-1].argmax(1)
    return np.stack([x1, y1, x2, y2], 1).astype(np.float32)


def _ring(masks: Tensor, width: int = 1) -> Tensor:
    """(M, h, w) float masks -> (M, h*w) locations within ``width`` cells
    of a component but outside it (8-neighbourhood dilation)."""
    grown = F.max_pool2d(masks[:, None], 2 * width + 1, 1, width)[:, 0]
    return (grown - masks).clamp(min=0).flatten(1)


@MODELS.register_module()
class FeatureClusterProposer(nn.Module):
    """Boxes and box features from clustering a feature map's locations.

    For each image of a batch: take the valid (unpadded) part of the feature
    map, run cosine k-means on its locations for every ``k`` in
    ``num_clusters``, split each cluster into connected components, and turn
    each component into the box around it, in pixels of the original image
    (``scale_factor`` and ``ori_shape`` of the image's meta). Then

    1. drop components of fewer than ``min_cells`` locations;
    2. drop boxes failing the shape filters (``min_size`` in pixels,
       ``aspect_range`` of w/h, ``area_ratio_range`` of
       sqrt(box area / image area), see
       :func:`~mmselfdet.structures.box_ops.box_shape_masks`);
    3. score each box by the **coherence** of its component, the mean cosine
       similarity of its locations to their mean feature [ours], or with
       ``score='contrast'`` by coherence minus the mean similarity of the
       ring of locations just outside the component (objectness) [ours];
    4. non-maximum suppression at ``nms_iou`` (duplicates from different
       ``k``), keep the best ``max_per_img``.

    With ``smooth`` > 1 every location is first replaced by the average of
    its ``smooth`` x ``smooth`` neighbourhood (clustering and scores): the
    parts of a textured object (stripes, dots) then fall into one cluster
    instead of one per texture colour [ours].

    Every box gets the masked average of the (raw) feature map over its
    component: the region's feature for the dataset-level clustering.

    Args:
        num_clusters (Sequence[int]): The ``k`` values. Defaults to
            (2, 3, 4, 6).
        kmeans_iters (int): Lloyd iterations per k-means. Defaults to 20.
        connectivity (int): 4 or 8. Defaults to 8.
        min_cells (int): Smallest component in locations. Defaults to 2.
        min_size (float, optional): Smallest box side in pixels.
            Defaults to 8.
        aspect_range (tuple, optional): w/h range. Defaults to (0.25, 4).
        area_ratio_range (tuple, optional): sqrt-area-ratio range.
            Defaults to (0.05, 0.9) (drops the whole-image background box).
        nms_iou (float, optional): De-duplication IoU. Defaults to 0.7.
        max_per_img (int, optional): Boxes kept per image. Defaults to 50.
        score (str): ``'coherence'`` or ``'contrast'`` (see step 3).
            Defaults to ``'coherence'``.
        smooth (int): Odd averaging window over locations before
            clustering; 1 = none. Defaults to 1.
        seed (int): Seed of every image's k-means (each image restarts
            from it, so results do not depend on the batch). Defaults to 0.
    """

    def __init__(self,
                 num_clusters: Sequence[int] = (2, 3, 4, 6),
                 kmeans_iters: int = 20,
                 connectivity: int = 8,
                 min_cells: int = 2,
                 min_size: Optional[float] = 8,
                 aspect_range: Optional[Tuple[float, float]] = (0.25, 4),
                 area_ratio_range: Optional[Tuple[float, float]] = (0.05,
                                                                    0.9),
                 nms_iou: Optional[float] = 0.7,
                 max_per_img: Optional[int] = 50,
                 score: str = 'coherence',
                 smooth: int = 1,
                 seed: int = 0) -> None:
        super().__init__()
        if not num_clusters or min(num_clusters) < 1:
            raise ValueError('FeatureClusterProposer: num_clusters must be a '
                             f'non-empty list of k >= 1, got {num_clusters}')
        if connectivity not in (4, 8):
            raise ValueError('FeatureClusterProposer: connectivity must be 4 '
                             f'or 8, got {connectivity}')
        self.num_clusters = tuple(int(k) for k in num_clusters)
        self.kmeans_iters = kmeans_iters
        self.connectivity = connectivity
        self.min_cells = min_cells
        self.min_size = min_size
        self.aspect_range = aspect_range
        self.area_ratio_range = area_ratio_range
        self.nms_iou = nms_iou
        self.max_per_img = max_per_img
        if score not in ('coherence', 'contrast'):
            raise ValueError('FeatureClusterProposer: score must be '
                             f'"coherence" or "contrast", got {score!r}')
        self.score = score
        if not isinstance(smooth, int) or smooth < 1 or smooth % 2 == 0:
            raise ValueError('FeatureClusterProposer: smooth must be an odd '
                             f'window size >= 1, got {smooth!r}')
        self.smooth = smooth
        self.seed = seed

    @torch.no_grad()
    def forward(self, feat: Tensor, batch_img_metas: List[dict],
                input_shape: Optional[Tuple[int, int]] = None
                ) -> List[Dict[str, Tensor]]:
        """Propose boxes for a batch.

        Args:
            feat (Tensor): (N, C, H, W) feature map of the padded batch.
            batch_img_metas (list[dict]): Per image ``img_shape`` (resized,
                unpadded), ``scale_factor`` (w, h) and ``ori_shape``.
            input_shape (tuple, optional): (H, W) of the padded input batch;
                defaults to ``batch_input_shape`` of the first meta.

        Returns:
            list[dict]: Per image ``bboxes`` (M, 4) x1y1x2y2 in original
            pixels, ``scores`` (M,) and ``feats`` (M, C), best first, on
            ``feat.device``.
        """
        if input_shape is None:
            input_shape = batch_img_metas[0]['batch_input_shape']
        stride_h = input_shape[0] / feat.shape[2]
        stride_w = input_shape[1] / feat.shape[3]
        return [
            self._propose_one(f, meta, stride_h, stride_w)
            for f, meta in zip(feat, batch_img_metas)
        ]

    def _propose_one(self, feat: Tensor, meta: dict, stride_h: float,
                     stride_w: float) -> Dict[str, Tensor]:
        img_h, img_w = meta['img_shape'][:2]
        h = max(1, min(feat.shape[1], int(np.ceil(img_h / stride_h))))
        w = max(1, min(feat.shape[2], int(np.ceil(img_w / stride_w))))
        raw = feat[:, :h, :w]  # (C, h, w)
        fmap = raw
        if self.smooth > 1:  # average each location with its neighbours
            fmap = F.avg_pool2d(raw[None], self.smooth, 1, self.smooth // 2,
                                count_include_pad=False)[0]
        locs = fmap.flatten(1).t()  # (h*w, C)
        gen = torch.Generator(device=feat.device).manual_seed(self.seed)
        masks = []
        for k in self.num_clusters:
            labels, _ = kmeans_locations(locs, k, self.kmeans_iters, gen)
            masks += cluster_components(
                labels.view(h, w).cpu().numpy(), self.connectivity,
                self.min_cells)
        dev, c = feat.device, feat.shape[0]
        empty = dict(bboxes=feat.new_zeros((0, 4)), scores=feat.new_zeros(0),
                     feats=feat.new_zeros((0, c)))
        if not masks:
            return empty
        masks_np = np.stack(masks)  # (M, h, w)
        boxes = torch.from_numpy(_mask_boxes(masks_np)).to(dev)  # (M, 4)
        boxes[:, 0::2] *= stride_w
        boxes[:, 1::2] *= stride_h
        boxes[:, 0::2] = boxes[:, 0::2].clamp(max=float(img_w))
        boxes[:, 1::2] = boxes[:, 1::2].clamp(max=float(img_h))
        sw, sh = meta.get('scale_factor', (1.0, 1.0))[:2]
        boxes /= boxes.new_tensor([sw, sh, sw, sh])
        ori_h, ori_w = meta.get('ori_shape', (img_h / sh, img_w / sw))[:2]
        keep = torch.ones(len(boxes), dtype=torch.bool, device=dev)
        for m in box_shape_masks(boxes, (ori_w, ori_h), self.min_size,
                                 self.aspect_range,
                                 self.area_ratio_range).values():
            keep &= m
        if not bool(keep.any()):
            return empty
        masks_t = torch.from_numpy(masks_np).to(dev)[keep].to(fmap.dtype)
        boxes = boxes[keep]
        area = masks_t.flatten(1).sum(1)  # (M,)
        pooled = torch.einsum('mhw,chw->mc', masks_t, raw) / area[:, None]
        unit = F.normalize(fmap.flatten(1), dim=0)  # (C, h*w)
        centre = F.normalize(
            torch.einsum('mhw,chw->mc', masks_t, fmap) if self.smooth > 1
            else pooled, dim=1)  # (M, C)
        sim = centre @ unit  # (M, h*w)
        flat = masks_t.flatten(1)
        scores = (sim * flat).sum(1) / area  # (M,)
        if self.score == 'contrast':
            ring = _ring(masks_t)  # (M, h*w)
            outside = (sim * ring).sum(1) / ring.sum(1).clamp(min=1)
            scores = scores - outside
        order = torch.argsort(scores, descending=True, stable=True)
        boxes, scores, pooled = boxes[order], scores[order], pooled[order]
        if self.nms_iou is not None and len(boxes) > 1:
            from mmcv.ops import nms
            _, inds = nms(boxes.float(), scores.float(), float(self.nms_iou))
            inds = inds.sort().values  # nms returns by score; keep order
            boxes, scores, pooled = boxes[inds], scores[inds], pooled[inds]
        if self.max_per_img is not None:
            boxes = boxes[:self.max_per_img]
            scores = scores[:self.max_per_img]
            pooled = pooled[:self.max_per_img]
        return dict(bboxes=boxes, scores=scores, feats=pooled)
