# Copyright (c) mmselfdet contributors. All rights reserved.
"""The "multiple cropping" loss of end-to-end SoCo (docs/methods.md §5, our
reading): extra crops of each V1 box whose online embedding predicts the
target V1 embedding of the box (``loss_soco_crops``)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmselfdet.registry import MODELS
from ..utils import crop_patches, map_boxes_batched, view_matrices
from ..utils.photometric import (SOCO_V2_AUGS, apply_photometric,
                                 draw_photometric)

_KEYS = ('num_crops', 'size', 'scale', 'weight', 'flip_prob', 'source',
         'raw_view', 'augs')


def build_crop_head(extra_crops: Optional[dict]) -> Optional[nn.Module]:
    """:class:`SoCoCropHead` from ``SoCo(extra_crops=...)``, with an error
    naming unknown keys; None stays None."""
    if extra_crops is None:
        return None
    unknown = set(extra_crops) - set(_KEYS)
    if unknown:
        raise KeyError(f'SoCo: unknown extra_crops keys {sorted(unknown)}')
    return MODELS.build(dict(type='SoCoCropHead', **extra_crops))


@MODELS.register_module()
class SoCoCropHead(nn.Module):
    """``num_crops`` square crops of each V1 box (enlarged by a factor in
    ``scale``, flipped with ``flip_prob``), each embedded by the online box
    encoder at the box inside the crop; the BYOL head's loss of that
    embedding against the target V1 embedding of the box, averaged over
    the crops, times ``weight``.

    With ``source='raw'`` (default) a crop is cut from the un-augmented raw
    view (``SoCoViews(raw_view='raw')``) at the V1 box mapped through
    ``H_raw @ inv(H_v1)`` and gets its own photometric augmentation
    (``augs``, SoCo's V2 augmentation, drawn per crop on the device), so it
    never shares V1's colours; with ``source='v1'`` **[ours, earlier]** it
    is resampled from the augmented V1 tensor.

    Args:
        num_crops (int): Crops per box. Defaults to 2.
        size (int): Crop side. Defaults to 96.
        scale (tuple[float, float]): Enlargement range (>= 1).
        weight (float): Loss weight. Defaults to 1.0.
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        source (str): 'raw' or 'v1'. Defaults to 'raw'.
        raw_view (str): Name of the raw view. Defaults to 'raw'.
        augs (dict, optional): Keys of
            :data:`~mmselfdet.models.utils.photometric.SOCO_V2_AUGS`; None
            for no augmentation ('raw' only).
    """

    def __init__(self,
                 num_crops: int = 2,
                 size: int = 96,
                 scale: Sequence[float] = (1.0, 1.5),
                 weight: float = 1.0,
                 flip_prob: float = 0.5,
                 source: str = 'raw',
                 raw_view: str = 'raw',
                 augs: Optional[dict] = SOCO_V2_AUGS) -> None:
        super().__init__()
        if source not in ('raw', 'v1'):
            raise ValueError(f"SoCo: extra_crops source must be 'raw' or "
                             f"'v1', got {source!r}")
        if augs is not None and set(augs) - set(SOCO_V2_AUGS):
            raise KeyError(f'SoCo: unknown extra_crops augs keys '
                           f'{sorted(set(augs) - set(SOCO_V2_AUGS))}')
        if int(num_crops) < 1 or int(size) < 1:
            raise ValueError(f'SoCo: extra_crops num_crops and size must be '
                             f'>= 1, got {num_crops}, {size}')
        self.num_crops, self.size = int(num_crops), int(size)
        self.scale, self.weight = tuple(scale), float(weight)
        self.flip_prob, self.source = float(flip_prob), source
        self.raw_view, self.augs = raw_view, augs

    def crop_source(self, inputs: Dict[str, Tensor], samples: Dict[str, list],
                    v1: str, v1_boxes: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """The image the crops are cut from and each V1 box in its pixels:
        the raw view at ``H_raw @ inv(H_v1)`` of the box, or V1."""
        boxes = torch.cat(v1_boxes)
        if self.source == 'v1':
            return inputs[v1], boxes
        name = self.raw_view
        if name not in inputs:
            raise KeyError(
                f"SoCo: extra_crops source='raw' needs the view {name!r} "
                f'(SoCoViews(raw_view={name!r}) packed without pixel '
                f"augmentation), the batch has {sorted(inputs)}; or use "
                "extra_crops source='v1'")
        device = boxes.device
        rel = view_matrices(samples[name], device) @ torch.linalg.inv(
            view_matrices(samples[v1], device))
        mapped = [map_boxes_batched(b[None], rel[i:i + 1])[0]
                  for i, b in enumerate(v1_boxes)]
        return inputs[name], torch.cat(mapped)

    def augment(self, patches: Tensor, preprocessor: nn.Module) -> Tensor:
        """Own photometric augmentation of each (normalised) crop, in RGB
        [0, 1] (the configs' preprocessor converts BGR to RGB)."""
        if self.augs is None:
            return patches
        if getattr(preprocessor, '_enable_normalize', False):
            mean = preprocessor.mean.view(1, -1, 1, 1)
            std = preprocessor.std.view(1, -1, 1, 1)
        else:
            mean, std = patches.new_zeros(()), patches.new_ones(())
        img = ((patches * std + mean) / 255).clamp(0, 1)  # (R, 3, S, S)
        params = draw_photometric(patches.size(0), self.augs, patches.device)
        return (apply_photometric(img, params) * 255 - mean) / std

    def loss(self, encoder: nn.Module, byol_head: nn.Module,
             inputs: Dict[str, Tensor], samples: Dict[str, list], v1: str,
             v1_boxes: List[Tensor], target_v1: Tensor,
             preprocessor: nn.Module) -> Dict[str, Tensor]:
        """``loss_soco_crops``.

        Args:
            encoder: The online :class:`BoxEncoder`.
            byol_head: The :class:`BYOLHead` (its predictor and loss).
            inputs, samples: The batch's views and data samples.
            v1 (str): Name of V1.
            v1_boxes: Per image (n_i, 4) V1 boxes (the target's rows).
            target_v1: (R, D) target embeddings of those boxes.
            preprocessor: The data preprocessor (its mean / std).
        """
        image, boxes = self.crop_source(inputs, samples, v1, v1_boxes)
        batch_idx = torch.cat([
            torch.full((len(b), ), i, device=boxes.device, dtype=torch.long)
            for i, b in enumerate(v1_boxes)
        ])
        losses = []
        for _ in range(self.num_crops):
            patches, inner = crop_patches(image, boxes, batch_idx, self.size,
                                          self.scale, self.flip_prob)
            if self.source == 'raw':
                patches = self.augment(patches, preprocessor)
            feats = encoder.features(patches).pyramid
            rois = torch.cat([torch.arange(len(inner), device=inner.device,
                                           dtype=inner.dtype)[:, None],
                              inner], 1)  # (R, 5)
            online = encoder.embed(feats, rois)[0]  # (R, D)
            losses.append(byol_head.loss(online, target_v1)['loss_byol'])
        return dict(loss_soco_crops=self.weight * sum(losses) / len(losses))
