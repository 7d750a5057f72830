# Copyright (c) mmselfdet contributors. All rights reserved.
"""Model side of DetCo's local view: cut jigsaw tiles back into patches.

The data pipeline (:class:`mmselfdet.datasets.transforms.JigsawPatches`)
packs the ``grid * grid`` patches of one image as one tile image in
row-major order; :func:`split_jigsaw` turns a batch of tiles into a batch of
patches for the backbone and :func:`merge_jigsaw` groups per-patch features
back per image (DetCo concatenates the 9 pooled features).
"""
from typing import Optional

from torch import Tensor


def split_jigsaw(x: Tensor, grid: int = 3,
                 patch_size: Optional[int] = None) -> Tensor:
    """Cut tiles ``(N, C, g*p, g*p)`` into patches ``(N*g*g, C, p, p)``.

    Patch ``k = row * g + col`` of image ``n`` is output ``n * g * g + k``
    (the order of :class:`JigsawPatches`' ``gt_instances_ids``).

    Args:
        x (Tensor): Batch of tiles.
        grid (int): Patches per side. Defaults to 3.
        patch_size (int, optional): Side of a patch. ``None``: ``H / grid``,
            and the tile must be square and divisible by ``grid``. Given,
            only the top-left ``grid * patch_size`` square is used, which
            drops padding added by a data preprocessor.

    Returns:
        Tensor: The patches.
    """
    if x.dim() != 4:
        raise ValueError(f'split_jigsaw expects (N, C, H, W), got '
                         f'{tuple(x.shape)}')
    n, c, h, w = x.shape
    if patch_size is None:
        if h != w or h % grid:
            raise ValueError(
                f'split_jigsaw: tiles of {h}x{w} are not a {grid}x{grid} '
                'grid of square patches; pass patch_size to ignore padding')
        patch_size = h // grid
    side = grid * patch_size
    if h < side or w < side:
        raise ValueError(f'split_jigsaw: tiles of {h}x{w} are smaller than '
                         f'{grid} x {patch_size} = {side}')
    x = x[:, :, :side, :side]
    x = x.reshape(n, c, grid, patch_size, grid, patch_size)
    x = x.permute(0, 2, 4, 1, 3, 5)  # n, row, col, c, p, p
    return x.reshape(n * grid * grid, c, patch_size, patch_size)


def merge_jigsaw(feats: Tensor, grid: int = 3) -> Tensor:
    """Concatenate per-patch features ``(N*g*g, D, ...)`` per image in patch
    order into ``(N, g*g*D, ...)`` (DetCo's local feature before its MLP).
    """
    num = grid * grid
    if feats.size(0) % num:
        raise ValueError(f'merge_jigsaw: {feats.size(0)} patches are not a '
                         f'multiple of {num}')
    n = feats.size(0) // num
    return feats.reshape(n, num * feats.size(1), *feats.shape[2:])
