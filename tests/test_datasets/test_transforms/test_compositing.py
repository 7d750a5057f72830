# Copyright (c) mmselfdet contributors. All rights reserved.
"""transforms/compositing.py: InstanceComposite (InsLoc)."""
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
from mmcv.transforms import Compose

from mmselfdet.datasets.transforms import InstanceComposite, map_boxes
from mmselfdet.datasets.transforms import compositing
from mmselfdet.datasets.transforms.compositing import imrescale_shape

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
            assert 0 <= x1 < x2 < 96 and 0 <= y1 < y2 < 96
            # imrescale into a (32..63)^2 target: long side < 64, short
            # side >= 16 (crop aspect within 0.5-2)
            assert max(x2 - x1, y2 - y1) < 64 and min(x2 - x1, y2 - y1) >= 16
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


def test_fg_sizes_range_switch_and_clamping():
    np.random.seed(1)
    t = InstanceComposite(fg_resize='range')  # (128, 255) on 256, ours
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
    # the official draw: independent, so both may be one image
    t_ref = InstanceComposite(distinct_backgrounds=False)
    pairs = [t_ref.get_indexes([0, 1]) for _ in range(60)]
    assert any(a == b for a, b in pairs) and any(a != b for a, b in pairs)
    assert t.get_indexes([0]) == [0, 0]
    with pytest.raises(KeyError, match='MultiImageMixDataset'):
        t(dict(img=_gradient(), img_path='x.png'))
    assert 'fg_size=(128, 255)' in repr(t)
    with pytest.raises(ValueError):
        InstanceComposite(fg_size=(64, 32))
    with pytest.raises(ValueError, match='fg_resize'):
        InstanceComposite(fg_resize='keep')
    assert "fg_resize='imrescale'" in repr(t)


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
                     pipeline=[dict(type='LoadImageRobust',
                                    on_error='skip')]),
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
            assert max(x2 - x1, y2 - y1) < 24 and min(x2 - x1, y2 - y1) >= 6
            assert (img[y1:y2, x1:x2] == colours[idx]).all()
            mask = np.ones((32, 32), bool)
            mask[y1:y2, x1:x2] = False
            bg = np.unique(img[mask], axis=0)
            assert len(bg) == 1
            bgs.append(tuple(bg[0]))
            assert sample.metainfo['img_id'] == idx
        assert bgs[0] != bgs[1]  # two different background images


# (crop w, h), imrescale target (w, h), the size by the rule worked out by
# hand: factor = min(max(t) / max(c), min(t) / min(c)), sides rounded half up
IMRESCALE_CASES = [
    ((100, 50), (200, 130), (200, 100)),  # aspect 2 > 200/130: long side
    ((50, 100), (130, 200), (100, 200)),  # the same, portrait
    ((50, 100), (200, 130), (100, 200)),  # target orientation is irrelevant
    ((80, 80), (254, 128), (128, 128)),  # square: the short target side
    ((120, 90), (150, 140), (150, 113)),  # 4:3, long side binds (112.5)
    ((90, 120), (250, 140), (140, 187)),  # 3:4, short side binds (186.7)
    ((300, 151), (128, 128), (128, 64)),  # aspect ~2, target 128: 64.4
    ((33, 17), (254, 129), (250, 129)),  # short binds: 129/17 * 33 = 250.4
]


@pytest.mark.parametrize('crop, target, want', IMRESCALE_CASES)
def test_imrescale_size_arithmetic(crop, target, want):
    assert imrescale_shape(crop, target) == want
    # what the official pipeline's mmcv.imrescale call really gives
    img = np.zeros((crop[1], crop[0], 3), np.uint8)
    assert mmcv.imrescale(img, target).shape[1::-1] == want


def test_default_sizes_follow_imrescale_through_the_transform(monkeypatch):
    """The transform draws a target (tw, th), each uniform in [128, 255),
    and pastes the crop at ``imrescale_shape(crop, target)``; the offset is
    in [0, 256 - side)."""
    t = InstanceComposite()
    img = _gradient(300, 400)
    for crop, target, want in IMRESCALE_CASES:
        if max(target) >= 255 or min(target) < 128:
            continue
        draws = []

        def randint(low, high=None, size=None):
            if (low, high) == (128, 255):  # the target sides, w then h
                draws.append(low)
                return target[(len(draws) - 1) % 2]
            return high - 1  # the largest paste offset
        monkeypatch.setattr(compositing, 'sample_resized_crop',
                            lambda *a, c=crop, **k: (0, 0, c[0], c[1]))
        monkeypatch.setattr(np.random, 'randint', randint)
        for view in t(_results(img))['views'].values():
            box = view['gt_bboxes'].numpy()[0]
            assert (box[2] - box[0], box[3] - box[1]) == want
            assert (box[2], box[3]) == (255, 255)  # offset 256 - side - 1
        monkeypatch.undo()


def test_default_sizes_fall_below_the_range_for_elongated_crops():
    """Statistics of the default (seeded): sides below 128 occur (the old
    rule forced [128, 255)), the long side stays below 255 and the pasted
    box keeps the crop's aspect."""
    np.random.seed(5)
    t = InstanceComposite()
    img = np.zeros((300, 500, 3), np.uint8)
    sides = []
    for _ in range(150):
        for v in t(_results(img))['views'].values():
            w, h = v['gt_bboxes'].widths.item(), v['gt_bboxes'].heights.item()
            sx, sy = np.diag(v['homography_matrix'])[:2]
            crop_w, crop_h = w / sx, h / sy
            assert abs(w / h - crop_w / crop_h) <= (w + h) / (h * h)
            sides.append((min(w, h), max(w, h)))
    short, long_ = np.array(sides).T
    assert long_.max() < 255 and short.min() >= 64
    assert (short < 128).mean() > 0.05
