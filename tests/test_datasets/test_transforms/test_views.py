# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
from mmcv.transforms import Compose

from mmselfdet.datasets.transforms import PackViews, make_view, map_boxes

PACK = dict(type='PackViewInputs')


def _source():
    img = np.zeros((40, 60, 3), np.uint8)
    return dict(img=img, img_path='a.jpg', img_id=7, ori_shape=(40, 60))


def test_map_boxes_scale_translate_flip():
    H = np.array([[2, 0, -10], [0, 0.5, 4], [0, 0, 1]], np.float32)
    out = map_boxes(np.array([[10, 20, 30, 40]]), H)
    assert np.allclose(out, [[10, 14, 50, 24]])
    flip = np.array([[-1, 0, 60], [0, 1, 0], [0, 0, 1]], np.float32)
    assert np.allclose(map_boxes(np.array([[10, 0, 20, 5]]), flip),
                       [[40, 0, 50, 5]])
    assert map_boxes(np.zeros((0, 4)), H).shape == (0, 4)


def test_make_view_composes_source_geometry():
    src = _source()
    src['homography_matrix'] = np.diag([2, 2, 1]).astype(np.float32)
    view = make_view(src, np.zeros((8, 8, 3), np.uint8),
                     np.diag([0.5, 0.5, 1]).astype(np.float32),
                     boxes=np.array([[1, 1, 4, 4]]), ids=np.array([5]))
    assert np.allclose(view['homography_matrix'], np.eye(3))
    assert view['gt_instances_ids'].tolist() == [5]
    assert view['img_path'] == 'a.jpg' and view['img_shape'] == (8, 8)
    with pytest.raises(ValueError):
        make_view(src, src['img'], np.eye(3), boxes=np.zeros((2, 4)),
                  ids=np.arange(3))


def test_pack_views_like_multibranch():
    src = _source()
    src['views'] = {
        'v1': make_view(src, np.zeros((16, 16, 3), np.uint8), np.eye(3),
                        boxes=np.array([[0, 0, 8, 8], [2, 2, 6, 6]])),
        'v2': make_view(src, np.zeros((8, 8, 3), np.uint8), np.eye(3),
                        boxes=np.array([[1, 1, 3, 3]]), ids=np.array([1])),
    }
    pipe = Compose([dict(type='PackViews', pipelines=dict(
        v1=[dict(type='RandomFlip', prob=1.0), PACK], v2=[PACK]))])
    out = pipe(src)
    assert out['inputs']['v1'].shape == (3, 16, 16)
    s1, s2 = out['data_samples']['v1'], out['data_samples']['v2']
    assert s1.gt_instances.instances_ids.tolist() == [0, 1]
    assert s2.gt_instances.instances_ids.tolist() == [1]
    # the flip moved box 0 and the homography says so
    assert np.allclose(s1.gt_instances.bboxes.tensor.numpy()[0], [8, 0, 16, 8])
    assert np.allclose(map_boxes(np.array([[0, 0, 8, 8]]),
                                 s1.metainfo['homography_matrix']),
                       [[8, 0, 16, 8]])
    assert s2.metainfo['img_id'] == 7


def test_pack_views_errors_name_views():
    src = _source()
    with pytest.raises(KeyError, match='view maker'):
        PackViews(dict(v1=[PACK]))(dict(src))
    src['views'] = {'v1': make_view(src, src['img'], np.eye(3)),
                    'extra': make_view(src, src['img'], np.eye(3))}
    with pytest.raises(KeyError, match='extra'):
        PackViews(dict(v1=[PACK]))(src)
