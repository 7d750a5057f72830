# Copyright (c) mmselfdet contributors. All rights reserved.
"""The batched ops that touch a view's data samples (issue 18): the
horizontal flip (moves boxes and the homography) and SoCo's cutout in box
(cuts at the current boxes); the pixel-only ops and the view's op list are
in :mod:`.batched_augment`."""
import numbers
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .photometric import cutout_in_boxes, parse_cutout

Params = Dict[str, Tensor]


class BatchedHorizontalFlip:
    """mmdet's ``RandomFlip`` (horizontal): with probability ``prob`` the
    image, its boxes and its homography (``[[-1, 0, w], [0, 1, 0],
    [0, 0, 1]] @ H``) are flipped; ``flip`` / ``flip_direction`` set."""

    def __init__(self, prob=0.5, direction='horizontal') -> None:
        if direction != 'horizontal' or not isinstance(prob, numbers.Number):
            raise ValueError('RandomFlip: the batched op supports one prob '
                             f"and direction='horizontal', got {prob}, "
                             f'{direction!r}')
        self.prob = float(prob)

    def draw(self, num: int, generator: torch.Generator) -> Params:
        return dict(flip=torch.rand(num, generator=generator) < self.prob)

    def apply(self, img: Tensor, p: Params) -> Tensor:
        on = p['flip'].to(img.device).view(-1, 1, 1, 1)
        return torch.where(on, img.flip(-1), img)

    @staticmethod
    def move_samples(samples: Optional[list], flip: Tensor,
                     width: int) -> None:
        """Flip the boxes and compose the homography of each flipped
        sample (in place, as mmdet's ``RandomFlip``: float32
        ``[[-1, 0, w], [0, 1, 0], [0, 0, 1]] @ H``); unflipped samples get
        ``flip=False``. Metainfo is set field by field (``set_metainfo``
        deep-copies its dict: most of this loop's time)."""
        if samples is None:
            return
        mat = np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], np.float32)
        for sample, on in zip(samples, flip.tolist()):
            meta = sample.metainfo_keys()
            if not on:
                if 'flip' not in meta:
                    sample.set_field(False, 'flip', field_type='metainfo')
                    sample.set_field(None, 'flip_direction',
                                     field_type='metainfo')
                continue
            if 'flip' in meta and sample.flip:
                raise ValueError('RandomFlip: the view was already flipped '
                                 'by the CPU pipeline; drop its RandomFlip '
                                 'when the preprocessor flips')
            sample.set_field(True, 'flip', field_type='metainfo')
            sample.set_field('horizontal', 'flip_direction',
                             field_type='metainfo')
            if 'homography_matrix' in meta:
                hom = sample.homography_matrix
                if hom is not None:
                    sample.set_field(
                        mat @ np.asarray(hom, dtype=np.float32),
                        'homography_matrix', field_type='metainfo')
            inst = sample.get('gt_instances')
            if inst is None or 'bboxes' not in inst or not len(inst):
                continue
            boxes = inst.bboxes
            if hasattr(boxes, 'flip_'):
                boxes.flip_(sample.img_shape, 'horizontal')
            else:
                inst.bboxes = torch.stack(
                    [width - boxes[:, 2], boxes[:, 1],
                     width - boxes[:, 0], boxes[:, 3]], 1)


class BatchedCutoutInBoxes:
    """``RandomCutoutInBoxes`` (SoCo's V2 / V3 cutout in box) on the batch:
    :func:`~.photometric.cutout_in_boxes` at each sample's packed boxes,
    the squares filled with ``fill`` (pixel values in the pipeline's
    channel order, rounded as the CPU transform does). Needs the view's
    data samples; its draws are made when it is applied."""

    needs_boxes = True

    def __init__(self, prob=0.5, ratio=(0.1, 0.3), placement='inside',
                 fill=(104, 116, 124), input_bgr: bool = True) -> None:
        self.cfg = parse_cutout(dict(prob=prob, ratio=tuple(ratio),
                                     placement=placement))
        self.cfg.pop('fill')
        fill = torch.tensor(fill, dtype=torch.float32).expand(3).round()
        self.fill = (fill.flip(0) if input_bgr else fill) / 255  # RGB

    def draw(self, num: int, generator: torch.Generator) -> Params:
        return {}

    def apply_boxes(self, img: Tensor, samples: Optional[list],
                    generator: torch.Generator, view: str = 'view'
                    ) -> Tensor:
        """Cut at each sample's current (host) boxes."""
        if samples is None:
            raise ValueError(f'gpu_augment["{view}"]: RandomCutoutInBoxes '
                             'needs the view\'s data samples (its boxes)')
        boxes = [getattr(s.gt_instances.bboxes, 'tensor',
                         s.gt_instances.bboxes) for s in samples]
        flat = torch.zeros_like(img[:, :1])  # (N, 1, H, W)
        mask = cutout_in_boxes(flat, boxes, fill=1.0, generator=generator,
                               **self.cfg) > 0
        return torch.where(mask, self.fill.to(img).view(1, 3, 1, 1), img)
