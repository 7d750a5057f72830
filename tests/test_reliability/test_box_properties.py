# Copyright (c) mmselfdet contributors. All rights reserved.
"""Property tests (hypothesis) of every transform that moves boxes: random
images and boxes in; boxes out stay inside the view, are not degenerate, and
agree with the view's homography (the geometry the models rely on)."""
import os.path as osp
import tempfile

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.datasets.transforms import (InstanceComposite,
                                           LoadImageRobust,
                                           RandomCropViews,
                                           RandomResizedCropWithBoxes,
                                           map_boxes)
from mmselfdet.datasets.transforms.box_jitter import RandomBoxJitter
from mmselfdet.datasets.transforms.object_crops import ObjectAwareCrops
from mmselfdet.datasets.transforms.soco_views import SoCoViews
from mmselfdet.structures.box_ops import box_iou, clip_boxes

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
EPS = 1e-2  # pixels (float32 box maths vs float32 homographies)


@st.composite
def scenes(draw, min_side=16, max_side=96, max_boxes=8):
    """((h, w), boxes x1y1x2y2 float32, seed): boxes of any size, some
    across the border (:func:`_setup` makes the image)."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    n = draw(st.integers(0, max_boxes))
    boxes = []
    for _ in range(n):
        x = draw(st.floats(-0.2 * w, 0.95 * w))
        y = draw(st.floats(-0.2 * h, 0.95 * h))
        bw = draw(st.floats(1.0, 1.2 * w))
        bh = draw(st.floats(1.0, 1.2 * h))
        boxes.append([x, y, x + bw, y + bh])
    seed = draw(st.integers(0, 2**31 - 1))
    return (h, w), np.array(boxes, np.float32).reshape(-1, 4), seed


def _setup(scene):
    """The scene's image and boxes; numpy's global RNG (the transforms'
    randomness) seeded from the scene."""
    hw, boxes, seed = scene
    np.random.seed(seed % 2**32)
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, hw + (3, ), dtype=np.uint8), boxes, seed


def _proposal_results(img, boxes):
    return dict(img=img.copy(), img_shape=img.shape[:2],
                ori_shape=img.shape[:2], img_id=0, img_path='p.jpg',
                proposals=boxes.copy())


def _results(img, boxes, **extra):
    n = len(boxes)
    res = dict(img=img.copy(), img_shape=img.shape[:2],
               ori_shape=img.shape[:2], img_id=0, img_path='p.jpg',
               gt_bboxes=HorizontalBoxes(boxes.copy()),
               gt_bboxes_labels=np.zeros(n, np.int64),
               gt_ignore_flags=np.zeros(n, bool),
               gt_instances_ids=np.arange(n, dtype=np.int64))
    res.update(extra)
    return res


def _np(boxes):
    return boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(boxes)


def check_inside_and_valid(view, min_size=0.0):
    """Boxes inside the view image, width and height > 0 (>= min_size)."""
    h, w = view['img'].shape[:2]
    b = _np(view['gt_bboxes']).reshape(-1, 4)
    assert np.isfinite(b).all()
    assert (b[:, 0] >= -EPS).all() and (b[:, 1] >= -EPS).all()
    assert (b[:, 2] <= w + EPS).all() and (b[:, 3] <= h + EPS).all()
    assert (b[:, 2] - b[:, 0] > 0).all() and (b[:, 3] - b[:, 1] > 0).all()
    assert (b[:, 2] - b[:, 0] >= min_size - EPS).all()
    assert (b[:, 3] - b[:, 1] >= min_size - EPS).all()
    ids = view.get('gt_instances_ids')
    if ids is not None:
        assert len(ids) == len(b)
    return b


def check_follows_homography(view, src_boxes, min_size):
    """Each box is its source box (by instance id) mapped by the view's
    homography and clipped to the view; no box that is visible with
    >= min_size pixels in the view is lost."""
    h, w = view['img'].shape[:2]
    b = check_inside_and_valid(view, min_size)
    mapped = clip_boxes(map_boxes(src_boxes, view['homography_matrix']),
                        (w, h), min_size=0)
    ids = view['gt_instances_ids']
    np.testing.assert_allclose(b, mapped[ids].reshape(-1, 4), atol=EPS)
    size = np.minimum(mapped[:, 2] - mapped[:, 0], mapped[:, 3] - mapped[:, 1])
    surely_visible = np.nonzero(size >= min_size + EPS)[0]
    assert set(surely_visible.tolist()) <= set(ids.tolist())


def check_back_inside_source(view, src_hw):
    """A view box mapped back to the source image lies inside it."""
    b = _np(view['gt_bboxes']).reshape(-1, 4)
    back = map_boxes(b, np.linalg.inv(view['homography_matrix']))
    tol = 1e-3 * max(src_hw) + EPS
    assert (back[:, :2] >= -tol).all()
    assert (back[:, 2] <= src_hw[1] + tol).all()
    assert (back[:, 3] <= src_hw[0] + tol).all()
    return back


@SETTINGS
@given(scenes(), st.integers(8, 64), st.floats(1.0, 6.0))
def test_random_resized_crop(scene, size, min_box):
    img, boxes, seed = _setup(scene)
    t = RandomResizedCropWithBoxes(scale=size, crop_scale=(0.1, 1.0),
                                   min_box_size=min_box)
    out = t(_results(img, boxes))
    assert out['img'].shape[:2] == (size, size)
    check_follows_homography(out, boxes, min_box)


@SETTINGS
@given(scenes(), st.integers(8, 48))
def test_random_crop_views(scene, size):
    img, boxes, seed = _setup(scene)
    out = RandomCropViews(size=size, min_box_size=1.0)(_results(img, boxes))
    assert set(out['views']) == {'view1', 'view2'}
    for view in out['views'].values():
        check_follows_homography(view, boxes, 1.0)


@SETTINGS
@given(scenes(min_side=24, max_boxes=6), st.integers(16, 48))
def test_soco_views(scene, size):
    img, boxes, seed = _setup(scene)
    t = SoCoViews(v1_size=size, v2_size=size, v3_size=max(size // 2, 8),
                  min_box_size=1.0, interpolation='nearest')
    out = t(_proposal_results(img, boxes))
    # id -1: the documented fallback, the whole image as the box
    whole = np.array([[0, 0, img.shape[1], img.shape[0]]], np.float32)
    for view in out['views'].values():
        check_follows_homography_subset(view, np.concatenate([boxes, whole]))


def check_follows_homography_subset(view, proposals):
    """Like :func:`check_follows_homography` for a view that holds a chosen
    subset of the proposals (ids index the proposals)."""
    h, w = view['img'].shape[:2]
    b = check_inside_and_valid(view)
    mapped = clip_boxes(map_boxes(proposals, view['homography_matrix']),
                        (w, h), min_size=0)
    np.testing.assert_allclose(b, mapped[view['gt_instances_ids']],
                               atol=EPS)


@SETTINGS
@given(scenes(min_side=32, max_boxes=6), st.integers(16, 48),
       st.sampled_from(['obj_obj_dilate', 'obj_scene', 'scene_scene']))
def test_object_aware_crops(scene, size, mode):
    img, boxes, seed = _setup(scene)
    t = ObjectAwareCrops(mode=mode, out_size=size, min_box_size=4,
                         min_crop_size=4, interpolation='nearest')
    out = t(_proposal_results(img, boxes))
    valid = clip_boxes(boxes, img.shape[1::-1], min_size=0)
    for view in out['views'].values():
        assert view['img'].shape[:2] == (size, size)
        check_inside_and_valid(view)
        back = check_back_inside_source(view, img.shape[:2])
        ids = view['gt_instances_ids']
        if len(ids) and len(valid):  # a box overlaps the proposal it names
            iou = box_iou(back, valid[ids])
            assert (np.diag(np.asarray(iou)) > 0).all()


@SETTINGS
@given(scenes(min_side=32, max_boxes=0), st.integers(16, 64))
def test_instance_composite(scene, bg):
    img, _, seed = _setup(scene)
    rng = np.random.default_rng(seed)
    mix = [dict(img=rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
                img_path=f'bg{i}.png') for i in range(2)]
    t = InstanceComposite(fg_size=(max(bg // 4, 4), max(bg // 2, 8)),
                          bg_size=bg)
    out = t(dict(img=img.copy(), img_path='fg.png', img_id=0,
                 ori_shape=img.shape[:2], mix_results=mix))
    for view in out['views'].values():
        assert view['img'].shape[:2] == (bg, bg)
        b = check_inside_and_valid(view)
        assert len(b) == 1
        check_back_inside_source(view, img.shape[:2])


@SETTINGS
@given(scenes(), st.sampled_from(['anchor', 'relative']),
       st.floats(0.0, 0.5))
def test_box_jitter(scene, mode, ratio):
    img, boxes, seed = _setup(scene)
    h, w = img.shape[:2]
    inside = clip_boxes(boxes, (w, h), min_size=0)
    keep = ((inside[:, 2] - inside[:, 0] >= 1)
            & (inside[:, 3] - inside[:, 1] >= 1))
    inside = inside[keep]
    t = RandomBoxJitter(mode=mode, stride=8, sizes=(8, 16, 32),
                        jitter_ratio=ratio)
    out = t(_results(img, inside))
    b = check_inside_and_valid(out, 1.0)
    assert len(b) == len(inside)  # no box dropped, aligned keys valid
    if mode == 'relative':
        bw = inside[:, 2:] - inside[:, :2]
        bound = 1.5 * ratio * np.concatenate([bw, bw], 1) + 1 + EPS
        assert (np.abs(b - inside) <= bound).all()


@settings(max_examples=15, deadline=None, derandomize=True)
@given(scenes(max_side=40), st.integers(8, 80))
def test_robust_loading_upscale(scene, min_size):
    img, boxes, seed = _setup(scene)
    with tempfile.TemporaryDirectory() as d:
        path = osp.join(d, 'x.png')
        cv2.imwrite(path, img)
        res = _results(img, boxes)
        res.pop('img')
        res['img_path'] = path
        out = LoadImageRobust(min_size=min_size)(res)
    h, w = out['img'].shape[:2]
    assert min(h, w) >= min(min_size, min(img.shape[:2]))
    mapped = map_boxes(boxes, out.get('homography_matrix', np.eye(3)))
    np.testing.assert_allclose(_np(out['gt_bboxes']).reshape(-1, 4), mapped,
                               atol=EPS * max(1, min_size / 16))
