# Copyright (c) mmselfdet contributors. All rights reserved.
"""transforms/compositing.py: InstanceComposite (InsLoc)."""
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
from mmcv.transforms import Compose

from mmselfdet.datasets.transforms import InstanceComposite, map_boxes

PACK = dict(type='PackViewInputs')


def _gradient(h: int = 120, w: int = 160) -> np.ndarray:
    """An image whose pixels name their position (B = x, G = y)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.dstack([xs % 256, ys % 256, np.full_like(xs, 200)]).astype(
        np.uint8)


def _results(img, colours=((255, 0, 0), (0, 0, 255))):
    mix = [dict(img=np.full((50 + 10 * i, 70, 3), c, np.uint8),
                img_path=f'bg{i}.png') for i, c in enumerate(colours)]
    return dict(img=img, img_path='fg.png', img_id=0,
                ori_shape=img.shape[:2], mix_results=mix)


def test_views_paste_fg_crop_on_distinct_backgrounds():
    np.random.seed(0)
    t = InstanceComposite(fg_size=(32, 64), bg_size=96)
    img = _gradient()
    for _ in range(10):
        res = t(_results(img))
        views = res['views']
        assert list(views) == ['query', 'key']
        for view, colour in zip(views.values(), ((255, 0, 0), (0, 0, 255))):
            canvas = view['img']
            assert canvas.shape == (96, 96, 3)
            box = view['gt_bboxes'].numpy()
            assert box.shape == (1, 4)
            assert view['gt_instances_ids'].tolist() == [0]
            x1, y1, x2, y2 = box[0].astype(int)
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
            assert 32 <= x2 - x1 < 64 and 32 <= y2 - y1 < 64
            # background colour everywhere outside the box
            outside = np.ones((96, 96), bool)
            outside[y1:y2, x1:x2] = False
            assert (canvas[outside] == colour).all()
            # inside: the foreground crop, found through the homography
            crop = map_boxes(box, np.linalg.inv(view['homography_matrix']))
            cx1, cy1, cx2, cy2 = np.round(crop[0]).astype(int)
            assert np.allclose(crop[0], (cx1, cy1, cx2, cy2), atol=1e-3)
            expect = mmcv.imresize(img[cy1:cy2, cx1:cx2], (x2 - x1, y2 - y1))
            assert np.array_equal(canvas[y1:y2, x1:x2], expect)
            assert view['img_path'] == 'fg.png'
        assert views['query']['bg_img_path'] == 'bg0.png'
        assert views['key']['bg_img_path'] == 'bg1.png'


def test_fg_sizes_default_range_and_clamping():
    np.random.seed(1)
    t = InstanceComposite()  # (128, 255) on 256
    img = np.zeros((300, 500, 3), np.uint8)
    for _ in range(20):
        for v in t(_results(img))['views'].values():
            w, h = v['gt_bboxes'].widths.item(), v['gt_bboxes'].heights.item()
            assert 128 <= w < 255 and 128 <= h < 255
            assert v['img'].shape == (256, 256, 3)
    # a foreground bigger than the background is shrunk to fit
    t = InstanceComposite(fg_size=(100, 200), bg_size=(40, 60))
    for _ in range(10):
        for v in t(_results(img))['views'].values():
            x1, y1, x2, y2 = v['gt_bboxes'].numpy()[0]
            assert x1 >= 0 and y1 >= 0 and x2 <= 40 and y2 <= 60
            assert v['img'].shape == (60, 40, 3)


def test_get_indexes_and_errors():
    np.random.seed(2)
    t = InstanceComposite()
    for _ in range(20):
        a, b = t.get_indexes(list(range(5)))
        assert a != b and 0 <= a < 5 and 0 <= b < 5
    assert sorted(t.get_indexes([0, 1])) == [0, 1]
    assert t.get_indexes([0]) == [0, 0]
    with pytest.raises(KeyError, match='MultiImageMixDataset'):
        t(dict(img=_gradient(), img_path='x.png'))
    assert 'fg_size=(128, 255)' in repr(t)
    with pytest.raises(ValueError):
        InstanceComposite(fg_size=(64, 32))


def test_flip_in_view_pipeline_moves_box():
    np.random.seed(3)
    res = InstanceComposite(fg_size=(16, 32), bg_size=64)(_results(_gradient()))
    before = {k: v['gt_bboxes'].numpy().copy() for k, v in res['views'].items()}
    out = Compose([dict(type='PackViews', pipelines=dict(
        query=[dict(type='RandomFlip', prob=1.0), PACK],
        key=[PACK]))])(res)
    q = out['data_samples']['query']
    x1, y1, x2, y2 = before['query'][0]
    assert np.allclose(q.gt_instances.bboxes.tensor.numpy(),
                       [[64 - x2, y1, 64 - x1, y2]])
    assert np.allclose(out['data_samples']['key'].gt_instances.bboxes.tensor,
                       before['key'])
    # the flipped image still shows the foreground inside the moved box
    assert q.gt_instances.instances_ids.tolist() == [0]
    assert out['inputs']['query'].shape == (3, 64, 64)


def test_through_multi_image_mix_dataset(tmp_path):
    from mmdet.registry import DATASETS
    colours = [(10, 20, 30), (200, 0, 0), (0, 200, 0), (0, 0, 200)]
    for i, c in enumerate(colours):
        cv2.imwrite(osp.join(tmp_path, f'{i}.png'),
                    np.full((40 + 8 * i, 56, 3), c, np.uint8))
    view = [dict(type='RandomFlip', prob=0.5), PACK]
    ds = DATASETS.build(dict(
        type='MultiImageMixDataset',
        dataset=dict(type='UnlabeledDataset', data_root=str(tmp_path),
                     pipeline=[dict(type='LoadImageFromFile')]),
        pipeline=[
            dict(type='InstanceComposite', fg_size=(12, 24), bg_size=32),
            dict(type='PackViews', pipelines=dict(query=view, key=view)),
        ]))
    np.random.seed(4)
    for idx in range(len(ds)):
        out = ds[idx]
        bgs = []
        for name in ('query', 'key'):
            img = out['inputs'][name].permute(1, 2, 0).numpy()
            sample = out['data_samples'][name]
            assert img.shape == (32, 32, 3)
            x1, y1, x2, y2 = sample.gt_instances.bboxes.tensor[0].int().tolist()
            assert 12 <= x2 - x1 < 24 and 12 <= y2 - y1 < 24
            assert (img[y1:y2, x1:x2] == colours[idx]).all()
            mask = np.ones((32, 32), bool)
            mask[y1:y2, x1:x2] = False
            bg = np.unique(img[mask], axis=0)
            assert len(bg) == 1
            bgs.append(tuple(bg[0]))
            assert sample.metainfo['img_id'] == idx
        assert bgs[0] != bgs[1]  # two different background images
