# Copyright (c) mmselfdet contributors. All rights reserved.
"""Selective search as a proposer, beside :class:`HeatMapProposer`.

The search itself is :func:`mmselfdet.datasets.proposals.selective_search`
(numpy / OpenCV, in ``datasets`` because the offline generator runs it in
worker processes and the data side must not import the models); this
module gives it the heat-map proposer's shape: a registered module without
parameters that takes a batch and returns padded ``(boxes, valid, stats)``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from mmselfdet.datasets.proposals.selective_search import (SS_MODES,
                                                           selective_search)
from mmselfdet.registry import MODELS


@MODELS.register_module()
class SelectiveSearchProposer(nn.Module):
    """Boxes of an image by selective search (OpenCV ``cv2.ximgproc``).

    Unlike :class:`HeatMapProposer`, which reads a feature map, this reads
    the image: ``forward`` takes uint8-range BGR images, runs on the CPU
    (the tensors are moved back to the input's device) and is
    deterministic (``seed``). ``tools/generate_proposals.py`` calls
    :meth:`propose` per image.

    Args:
        mode (str): ``'fast'`` or ``'quality'``. Defaults to 'fast'.
        max_side (int, optional): Longer side the search runs at; None
            keeps the image size. Defaults to 500.
        max_boxes (int, optional): Keep the first ``max_boxes`` of the
            ranked output. Defaults to None (all).
        seed (int): Seed of the ranking's random part. Defaults to 0.
    """

    def __init__(self,
                 mode: str = 'fast',
                 max_side: Optional[int] = 500,
                 max_boxes: Optional[int] = None,
                 seed: int = 0) -> None:
        super().__init__()
        if mode not in SS_MODES:
            raise ValueError(f'mode must be one of {SS_MODES}, got {mode!r}')
        self.mode = mode
        self.max_side = max_side or None
        self.max_boxes = None if max_boxes is None else int(max_boxes)
        self.seed = int(seed)

    def propose(self, img_bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Boxes of one image.

        Args:
            img_bgr (np.ndarray): uint8 (H, W, 3) BGR.

        Returns:
            tuple: float32 (N, 4) x1y1x2y2 boxes in the image's pixels,
            best first, and their rank scores ``1 / (1 + rank)``.
        """
        return selective_search(img_bgr, self.mode, self.max_side,
                                self.max_boxes, seed=self.seed)

    def forward(self, imgs: Union[Tensor, Sequence[np.ndarray]]
                ) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """Boxes of a batch, padded to the largest count.

        Args:
            imgs (Tensor | Sequence[np.ndarray]): (B, 3, H, W) BGR in
                [0, 255] (e.g. before normalisation), or uint8 (H, W, 3)
                BGR arrays of any sizes.

        Returns:
            tuple: ``boxes`` (B, K, 4) float32 image pixels, ``valid``
            (B, K) bool (slot holds a box), and ``stats``: ``ss_boxes``
            (mean boxes per image).
        """
        device = imgs.device if isinstance(imgs, Tensor) else None
        if isinstance(imgs, Tensor):
            arrays = [np.ascontiguousarray(
                im.detach().cpu().clamp(0, 255).round().to(
                    torch.uint8).permute(1, 2, 0).numpy())  # (H, W, 3)
                for im in imgs]
        else:
            arrays = list(imgs)
        found: List[np.ndarray] = [self.propose(a)[0] for a in arrays]
        k = max([len(b) for b in found] + [1])
        boxes = torch.zeros(len(found), k, 4)
        valid = torch.zeros(len(found), k, dtype=torch.bool)
        for i, b in enumerate(found):
            boxes[i, :len(b)] = torch.from_numpy(b)
            valid[i, :len(b)] = True
        stats = dict(ss_boxes=valid.sum(1).float().mean())
        if device is not None:
            boxes, valid = boxes.to(device), valid.to(device)
            stats = {n: v.to(device) for n, v in stats.items()}
        return boxes, valid, stats

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, max_side={self.max_side}, '
                f'max_boxes={self.max_boxes}, seed={self.seed}')


__all__ = ['SelectiveSearchProposer']
