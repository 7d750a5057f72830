# Copyright (c) mmselfdet contributors. All rights reserved.
"""DetCo's local view: a 3x3 jigsaw of patches packed as one tile image.

DetCo (docs/methods.md section 3) feeds 9 patches of one image through the
backbone. To let the ordinary view machinery (``PackViews``, the data
preprocessor, batching) carry them, :class:`JigsawPatches` lays the patches
out as ONE image, ``grid * patch_size`` pixels square, in row-major grid
order; the model cuts the batch of tiles back into patches with
:func:`mmselfdet.models.utils.jigsaw.split_jigsaw`.

A DetCo pipeline (two global views + the local view)::

    dict(type='LoadImageRobust', on_error='skip'),  # _base_.load_image
    dict(type='RandomCropViews', view_names=('view1', 'view2'), size=224,
         crop_scale=(0.2, 1.0)),
    dict(type='JigsawPatches', view_name='local',
         patch_pipeline=[...pixel augs...]),
    dict(type='PackViews', pipelines=dict(
        view1=[...pixel augs, dict(type='RandomFlip', prob=0.5),
               dict(type='PackViewInputs')],
        view2=[...same...],
        local=[dict(type='PackViewInputs')])),

Each patch is its own view, as in DetCo and PIRL: ``patch_pipeline`` (pixel
transforms only) runs on every patch separately, after its crop and flip,
so the 9 patches of a tile get independent colour jitter / grayscale / blur
draws and no blur crosses a patch border. Without ``patch_pipeline`` the
pixel augmentations can go into the local view pipeline instead, which
acts on the whole tile (one draw for all 9 patches: our former reading,
kept as a switch).

The local view pipeline must contain **no geometric transform**, RandomFlip
included: flipping the tile would move patch ``k`` into the slot of its
mirror and the model would see the patches in the wrong order. Patches are
flipped individually inside :class:`JigsawPatches` (``flip_patches``), as
DetCo flips each patch. The data preprocessor must not pad the tile
(``pad_size_divisor`` dividing ``grid * patch_size``, e.g. 32 for 192) or
``split_jigsaw`` must be given ``patch_size`` so that it ignores the
padding.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmcv.transforms.utils import cache_randomness

from mmselfdet.registry import TRANSFORMS

from .crop_views import add_views
from .geometric import (RandomResizedCropWithBoxes, crop_resize_view,
                        sample_resized_crop)
from .views import make_view


@TRANSFORMS.register_module()
class JigsawPatches(BaseTransform):
    """DetCo's local view: RandomResizedCrop -> grid cells -> one random
    patch per cell, packed as a tile image.

    Steps: a RandomResizedCrop of the loaded image to ``crop_size`` square
    (area ``crop_scale``, log-uniform aspect ``ratio``; the sampler of
    :class:`RandomResizedCropWithBoxes`), cut into ``grid x grid`` cells of
    ``crop_size // grid`` pixels (85 for 255 / 3; leftover border pixels
    are unused), one ``patch_size`` square at a uniform position inside each
    cell, each mirrored horizontally with probability 0.5 when
    ``flip_patches``, then passed alone through ``patch_pipeline`` (pixel
    augmentations, independent draws per patch). Patch ``k = row * grid +
    col`` is placed at ``(col * patch_size, row * patch_size)`` of the tile.

    The view ``results['views'][view_name]`` holds (the views dict is
    created, or extended when a view maker such as
    :class:`RandomCropViews` ran before):

    - ``img``: the ``(grid * patch_size)``-square tile (192 x 192 x 3);
    - ``gt_bboxes``: the ``grid * grid`` patch rectangles in the tile,
      ``gt_instances_ids`` ``0 .. grid*grid - 1`` (the patch index);
    - ``homography_matrix``: source image -> the ``crop_size`` crop frame
      (the RandomResizedCrop; NOT the tile frame, which is piecewise);
    - ``jigsaw_offsets`` (int64, (grid*grid, 2)): top-left ``(x, y)`` of
      each patch in the crop frame; a crop-frame point ``(u, v)`` of patch
      ``k`` lies at tile ``(col*p + u - x_k, row*p + v - y_k)``, or at
      ``(col*p + p - (u - x_k), ...)`` when the patch is flipped;
    - ``jigsaw_flips`` (bool, (grid*grid,)): which patches are mirrored;
    - ``jigsaw_homography_matrices`` (float32, (grid*grid, 3, 3)): the exact
      source image -> tile map of each patch (crop, offset and flip
      composed), valid inside that patch's rectangle.

    Add ``jigsaw_offsets`` etc. to ``PackViewInputs(meta_keys=...)`` if the
    model needs them. See the module docstring for the local view pipeline
    (no RandomFlip there).

    Required Keys:

    - img
    - homography_matrix (optional)
    - views (optional)

    Modified Keys:

    - views

    Added Keys:

    - views (the ``view_name`` entry)

    Args:
        crop_size (int): Side of the RandomResizedCrop. Defaults to 255.
        crop_scale (Sequence[float]): Area fraction range of the crop.
            Defaults to ``(0.6, 1.0)``.
        grid (int): Cells per side. Defaults to 3.
        patch_size (int): Side of each patch, at most
            ``crop_size // grid``. Defaults to 64.
        view_name (str): Name of the local view. Defaults to 'local'.
        flip_patches (bool): Mirror each patch with probability 0.5.
            Defaults to True.
        ratio (Sequence[float]): Aspect range of the crop. Defaults to
            ``(3 / 4, 4 / 3)``.
        max_attempts (int): Crop draws before the central fallback.
            Defaults to 10.
        interpolation (str): ``mmcv.imresize`` method. Defaults to
            'bilinear'.
        patch_pipeline (Sequence[dict], optional): Pixel transforms run on
            each patch alone (``img`` in, an image of the same shape out);
            None: the patches are not augmented here. Defaults to None.
    """

    def __init__(self,
                 crop_size: int = 255,
                 crop_scale: Sequence[float] = (0.6, 1.0),
                 grid: int = 3,
                 patch_size: int = 64,
                 view_name: str = 'local',
                 flip_patches: bool = True,
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 patch_pipeline: Optional[Sequence[dict]] = None) -> None:
        super().__init__()
        crop_size, grid, patch_size = int(crop_size), int(grid), int(patch_size)
        if grid < 1:
            raise ValueError(f'grid must be >= 1, got {grid}')
        if patch_size < 1 or patch_size > crop_size // grid:
            raise ValueError(
                f'patch_size must be in [1, crop_size // grid = '
                f'{crop_size // grid}], got {patch_size}')
        self.crop_size = crop_size
        self.grid = grid
        self.patch_size = patch_size
        self.cell_size = crop_size // grid
        self.view_name = str(view_name)
        self.flip_patches = bool(flip_patches)
        self._sampler = RandomResizedCropWithBoxes(
            scale=crop_size, crop_scale=crop_scale, ratio=ratio,
            max_attempts=max_attempts, interpolation=interpolation)
        self.patch_pipeline: Optional[List[dict]] = (
            None if patch_pipeline is None else list(patch_pipeline))
        self._patch_aug = (None if patch_pipeline is None else
                           Compose([TRANSFORMS.build(t) if isinstance(t, dict)
                                    else t for t in patch_pipeline]))

    def _augment(self, patch: np.ndarray) -> np.ndarray:
        """``patch_pipeline`` on one patch; its shape must not change."""
        size = patch.shape[:2]
        out = self._patch_aug(dict(img=np.ascontiguousarray(patch),
                                   img_shape=size, ori_shape=size))
        if out is None or out['img'].shape != patch.shape:
            raise ValueError(
                'JigsawPatches: patch_pipeline must keep each patch as it is '
                f'shaped ({patch.shape}), got '
                f'{None if out is None else out["img"].shape}; put only pixel '
                'transforms there')
        return out['img']

    @cache_randomness
    def _sample_layout(
            self, height: int, width: int
    ) -> Tuple[Tuple[int, int, int, int], np.ndarray, np.ndarray]:
        """Crop region ``(x1, y1, x2, y2)``, per-patch offsets in the crop
        frame ``(grid*grid, 2)`` and per-patch flips ``(grid*grid,)``."""
        s = self._sampler
        crop = sample_resized_crop((0, 0, width, height), s.crop_scale,
                                   s.ratio, s.max_attempts, y_first=True)
        n = self.grid * self.grid
        span = self.cell_size - self.patch_size + 1
        inner = np.random.randint(0, span, size=(n, 2))
        rows, cols = np.divmod(np.arange(n), self.grid)
        offsets = inner + np.stack([cols, rows], 1) * self.cell_size
        if self.flip_patches:
            flips = np.random.rand(n) < 0.5
        else:
            flips = np.zeros(n, bool)
        return crop, offsets.astype(np.int64), flips

    def transform(self, results: dict) -> Optional[dict]:
        """Add the local view to ``results['views']``.

        Args:
            results (dict): Result dict of the loaded image.

        Returns:
            dict: ``results`` with the local view added.
        """
        height, width = results['img'].shape[:2]
        crop_box, offsets, flips = self._sample_layout(height, width)
        # the crop alone (source frame -> crop frame); make_view composes
        # the source's own homography_matrix onto it
        crop = crop_resize_view(
            dict(img=results['img']), crop_box,
            (self.crop_size, self.crop_size),
            interpolation=self._sampler.interpolation)
        crop_img = crop['img']
        g, p = self.grid, self.patch_size
        tile = np.empty((g * p, g * p) + crop_img.shape[2:], crop_img.dtype)
        boxes = np.zeros((g * g, 4), np.float32)
        for k, ((x, y), flip) in enumerate(zip(offsets, flips)):
            row, col = divmod(k, g)
            patch = crop_img[y:y + p, x:x + p]
            patch = patch[:, ::-1] if flip else patch
            if self._patch_aug is not None:
                patch = self._augment(patch)
            tile[row * p:(row + 1) * p, col * p:(col + 1) * p] = patch
            boxes[k] = (col * p, row * p, (col + 1) * p, (row + 1) * p)
        view = make_view(results, tile, crop['homography_matrix'], boxes=boxes)
        # per patch: crop frame -> tile slot (translate, or mirror inside
        # the slot), composed with source -> crop
        mats = np.zeros((g * g, 3, 3), np.float32)
        for k, ((x, y), flip) in enumerate(zip(offsets, flips)):
            tx, ty = boxes[k, :2]
            if flip:
                m = np.array([[-1, 0, tx + p + x], [0, 1, ty - y], [0, 0, 1]])
            else:
                m = np.array([[1, 0, tx - x], [0, 1, ty - y], [0, 0, 1]])
            mats[k] = m @ view['homography_matrix']
        view['jigsaw_offsets'] = offsets
        view['jigsaw_flips'] = flips
        view['jigsaw_homography_matrices'] = mats
        add_views(results, {self.view_name: view}, type(self).__name__)
        return results

    def __repr__(self) -> str:
        s = self._sampler
        return (f'{self.__class__.__name__}('
                f'crop_size={self.crop_size}, '
                f'crop_scale={s.crop_scale}, '
                f'grid={self.grid}, '
                f'patch_size={self.patch_size}, '
                f'view_name={self.view_name!r}, '
                f'flip_patches={self.flip_patches}, '
                f'ratio={s.ratio}, '
                f'max_attempts={s.max_attempts}, '
                f'interpolation={s.interpolation!r}, '
                f'patch_pipeline={self.patch_pipeline})')
