# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.datasets.transforms import JigsawPatches, RandomCropViews, map_boxes
from mmselfdet.models.utils.jigsaw import merge_jigsaw, split_jigsaw

PACK = dict(type='PackViewInputs')


def _cells(size: int = 255, grid: int = 3) -> np.ndarray:
    """Each grid cell painted with its own colour (cell k -> value 20 * k)."""
    img = np.zeros((size, size, 3), np.uint8)
    cell = size // grid
    for k in range(grid * grid):
        r, c = divmod(k, grid)
        img[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = (20 * k, k, 7)
    return img


def _identity_crop(**kwargs) -> JigsawPatches:
    # the whole 255 image, resized to 255: the crop is the identity
    return JigsawPatches(crop_scale=(1.0, 1.0), ratio=(1.0, 1.0), **kwargs)


def test_tile_patches_come_from_their_cells():
    np.random.seed(0)
    t = _identity_crop()
    res = t(dict(img=_cells(), img_path='a.png', img_id=3))
    view = res['views']['local']
    tile = view['img']
    assert tile.shape == (192, 192, 3)
    assert np.allclose(view['homography_matrix'], np.eye(3))
    boxes = view['gt_bboxes'].numpy()
    assert view['gt_instances_ids'].tolist() == list(range(9))
    for k in range(9):
        r, c = divmod(k, 3)
        assert boxes[k].tolist() == [64 * c, 64 * r, 64 * c + 64, 64 * r + 64]
        patch = tile[64 * r:64 * r + 64, 64 * c:64 * c + 64]
        assert (patch == (20 * k, k, 7)).all(), k
        x, y = view['jigsaw_offsets'][k]
        assert 85 * c <= x <= 85 * c + 85 - 64 and 85 * r <= y <= 85 * r + 21
    assert view['img_path'] == 'a.png'


def test_patch_homographies_and_flips_are_exact():
    np.random.seed(1)
    ys, xs = np.mgrid[0:255, 0:255]
    img = np.dstack([xs, ys, (xs * 7 + ys * 3) % 256]).astype(np.uint8)
    src_h = np.diag([0.5, 0.5, 1]).astype(np.float32)  # e.g. from a loader
    res = _identity_crop(flip_patches=True)(
        dict(img=img, homography_matrix=src_h))
    view = res['views']['local']
    flips = view['jigsaw_flips']
    assert flips.any() and not flips.all()  # seed 1 flips some patches
    tile = view['img']
    for k in range(9):
        r, c = divmod(k, 3)
        # tile pixel centres -> original frame -> pixel of the (1/0.5) image
        inv = np.linalg.inv(view['jigsaw_homography_matrices'][k] @
                            np.linalg.inv(src_h))
        ty, tx = np.mgrid[64 * r:64 * r + 64, 64 * c:64 * c + 64]
        pts = np.stack([tx.ravel() + 0.5, ty.ravel() + 0.5, np.ones(tx.size)])
        sx, sy = (inv @ pts)[:2] - 0.5
        sx, sy = np.round(sx).astype(int), np.round(sy).astype(int)
        assert np.array_equal(tile[ty.ravel(), tx.ravel()], img[sy, sx])
        if flips[k]:  # mirrored: B channel (= x) decreases along the row
            assert tile[64 * r, 64 * c, 0] > tile[64 * r, 64 * c + 63, 0]


def test_with_global_views_and_pack():
    np.random.seed(2)
    img = np.random.randint(0, 255, (120, 150, 3), np.uint8)
    res = dict(img=img, img_path='b.png', img_id=1,
               gt_bboxes=HorizontalBoxes(np.array([[10., 10., 100., 90.]])))
    pipe = Compose([
        dict(type='RandomCropViews', view_names=('view1', 'view2'), size=64,
             crop_scale=(0.5, 1.0)),
        dict(type='JigsawPatches', crop_size=96, patch_size=24),
        dict(type='PackViews', pipelines=dict(
            view1=[dict(type='RandomFlip', prob=0.5), PACK],
            view2=[dict(type='RandomFlip', prob=0.5), PACK], local=[PACK])),
    ])
    out = pipe(res)
    assert out['inputs']['view1'].shape == (3, 64, 64)
    assert out['inputs']['local'].shape == (3, 72, 72)
    local = out['data_samples']['local']
    assert local.gt_instances.instances_ids.tolist() == list(range(9))
    assert len(out['data_samples']['view1'].gt_instances) == 1
    patches = split_jigsaw(out['inputs']['local'][None], grid=3)
    assert patches.shape == (9, 3, 24, 24)


def test_view_makers_add_and_refuse_duplicates():
    np.random.seed(3)
    img = np.zeros((50, 60, 3), np.uint8)
    res = RandomCropViews(view_names=('a', 'b'), size=32)(dict(img=img))
    res = JigsawPatches(crop_size=48, patch_size=12, view_name='c')(res)
    assert sorted(res['views']) == ['a', 'b', 'c']
    assert res['views']['c']['img'].shape == (36, 36, 3)
    assert res['img'] is img  # the source image is left alone
    with pytest.raises(KeyError, match='already'):
        JigsawPatches(crop_size=48, patch_size=12, view_name='a')(res)
    with pytest.raises(ValueError, match='patch_size'):
        JigsawPatches(crop_size=255, patch_size=86)
    assert 'patch_size=64' in repr(JigsawPatches())
    assert "view_names=('a', 'b')" in repr(RandomCropViews(('a', 'b')))


def test_random_crop_views_boxes_keep_ids():
    np.random.seed(4)
    boxes = HorizontalBoxes(np.array([[0., 0., 10., 10.], [20., 20., 60., 40.]]))
    res = RandomCropViews(view_names=('v1', 'v2', 'v3'), size=32,
                          crop_scale=(0.3, 1.0))(
        dict(img=np.zeros((40, 64, 3), np.uint8), gt_bboxes=boxes,
             gt_instances_ids=np.array([5, 9])))
    for v in res['views'].values():
        assert v['img'].shape == (32, 32, 3)
        ids = v['gt_instances_ids'].tolist()
        assert set(ids) <= {5, 9} and len(ids) == len(v['gt_bboxes'])
        # boxes are the source boxes mapped through the view's homography
        src = boxes.numpy()[[0 if i == 5 else 1 for i in ids]]
        mapped = np.clip(map_boxes(src, v['homography_matrix']), 0, 32)
        assert np.allclose(mapped, v['gt_bboxes'].numpy(), atol=1e-3)
    assert len(res['gt_bboxes']) == 2  # source untouched


def test_split_and_merge_jigsaw():
    n, g, p = 2, 3, 4
    tiles = torch.zeros(n, 3, g * p, g * p)
    for i in range(n):
        for k in range(g * g):
            r, c = divmod(k, g)
            tiles[i, :, r * p:(r + 1) * p, c * p:(c + 1) * p] = 100 * i + k
    patches = split_jigsaw(tiles, grid=g)
    assert patches.shape == (n * g * g, 3, p, p)
    for j in range(n * g * g):
        i, k = divmod(j, g * g)
        assert (patches[j] == 100 * i + k).all()
    # padded tiles (e.g. by a data preprocessor) with explicit patch_size
    padded = torch.nn.functional.pad(tiles, (0, 4, 0, 4))
    assert torch.equal(split_jigsaw(padded, grid=g, patch_size=p), patches)
    with pytest.raises(ValueError):
        split_jigsaw(padded, grid=g)
    feats = patches.mean((2, 3))  # (n*9, 3)
    merged = merge_jigsaw(feats, grid=g)
    assert merged.shape == (n, 9 * 3)
    assert merged[1, 3 * 4].item() == 104  # image 1, patch 4, channel 0


BRIGHTNESS = dict(type='ColorJitter', brightness=0.4, contrast=0, saturation=0,
                  hue=0, prob=1.0)


def _gradient_tile(**kwargs):
    ys, xs = np.mgrid[0:255, 0:255]
    img = np.dstack([40 + xs // 3, 40 + ys // 3, np.full_like(xs, 120)])
    return _identity_crop(**kwargs)(dict(img=img.astype(np.uint8)))[
        'views']['local']['img'].astype(float)


def test_each_patch_gets_its_own_augmentation():
    """patch_pipeline draws per patch: with a brightness-only jitter every
    patch is the un-augmented patch times its own factor (one factor per
    patch, 9 different ones); the layout is drawn before the jitter, so the
    same seed gives the same patches."""
    np.random.seed(7)
    plain = _gradient_tile()
    np.random.seed(7)
    tile = _gradient_tile(patch_pipeline=[BRIGHTNESS])
    factors = []
    for k in range(9):
        r, c = divmod(k, 3)
        cell = np.s_[64 * r:64 * r + 64, 64 * c:64 * c + 64]
        factor = tile[cell].mean() / plain[cell].mean()
        assert 0.6 - 0.01 <= factor <= 1.4 + 0.01
        # one factor for the whole patch (uint8 rounding: +-1)
        assert np.abs(tile[cell] - np.clip(plain[cell] * factor, 0, 255)
                      ).max() <= 1.5
        factors.append(factor)
    assert len({round(f, 3) for f in factors}) == 9


def test_tile_augmentation_switch_shares_one_draw():
    """Without patch_pipeline, a jitter in the local view pipeline acts on
    the whole tile: one factor for all 9 patches (our former reading)."""
    np.random.seed(7)
    plain = _gradient_tile()
    ys, xs = np.mgrid[0:255, 0:255]
    img = np.dstack([40 + xs // 3, 40 + ys // 3, np.full_like(xs, 120)])
    np.random.seed(7)
    out = Compose([
        dict(type='JigsawPatches', crop_scale=(1.0, 1.0), ratio=(1.0, 1.0)),
        dict(type='PackViews', pipelines=dict(local=[BRIGHTNESS, PACK])),
    ])(dict(img=img.astype(np.uint8)))
    tile = out['inputs']['local'].permute(1, 2, 0).numpy().astype(float)
    factor = tile.mean() / plain.mean()
    assert np.abs(tile - np.clip(plain * factor, 0, 255)).max() <= 1.5


def test_patch_pipeline_must_keep_the_patch_shape():
    t = _identity_crop(patch_pipeline=[dict(type='Resize', scale=(32, 32))])
    with pytest.raises(ValueError, match='pixel transforms'):
        t(dict(img=np.zeros((255, 255, 3), np.uint8)))
    assert 'ColorJitter' in repr(_identity_crop(patch_pipeline=[BRIGHTNESS]))
