# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.datasets.transforms.box_jitter import RandomBoxJitter
from mmselfdet.datasets.transforms.views import make_view
from mmselfdet.structures.box_ops import (
    anchor_grid,
    anchor_jitter,
    box_iou,
    clip_boxes,
    relative_jitter,
)

IMG_WH = (96, 80)
# our switches (clipped anchors, uniform draw, keep a fallback box) with the
# old grid; the tests of the official rule pass no arguments
OURS = dict(center_offset=0.5, nms_thr=None, clip_anchors=True,
            fallback='keep')


def _random_boxes(rng, num, img_wh=IMG_WH):
    """Boxes of every kind: inside, across the border, tiny, empty."""
    w, h = img_wh
    xy = rng.uniform(-10, [w, h], size=(num, 2))
    wh = rng.uniform(0, [w, h], size=(num, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    boxes[0] = [5, 5, 5, 5]  # empty
    boxes[1] = [-30, -30, -5, -5]  # outside
    return boxes


def _grid(img_wh=IMG_WH, **kwargs):
    kwargs.setdefault('center_offset', 0.5)
    return clip_boxes(anchor_grid(img_wh, **kwargs).numpy(), img_wh)


def test_anchor_jitter_returns_an_overlapping_anchor():
    boxes = np.array([[10, 10, 50, 40], [30, 20, 90, 78], [0, 0, 33, 33],
                      [40, 40, 41, 41], [0, 0, 96, 80]], np.float32)
    np.random.seed(0)
    out, fallback = anchor_jitter(boxes, IMG_WH, stride=8,
                                  sizes=(16, 32, 64), ratios=(0.5, 1, 2),
                                  **OURS)
    assert out.shape == (5, 4) and out.dtype == np.float32
    grid = _grid(stride=8, sizes=(16, 32, 64), ratios=(0.5, 1, 2))
    # the 1x1 box has no anchor with IoU > 0.5; all others do
    assert fallback.tolist() == [False, False, False, True, False]
    for box, new, fb in zip(boxes, out, fallback):
        if fb:
            assert np.allclose(new, clip_boxes(box[None], IMG_WH)[0])
            continue
        assert np.abs(grid - new).max(axis=1).min() < 1e-4  # a grid anchor
        assert box_iou(new[None], box[None])[0, 0] > 0.5


def test_anchor_jitter_fallbacks_and_defaults():
    # default grid: stride 16, sizes 32..256; a 700 px box and a 4 px box
    # have no anchor with IoU > 0.5
    boxes = np.array([[50, 50, 750, 750], [100, 100, 104, 104],
                      [100, 100, 200, 180]], np.float32)
    out, fallback = anchor_jitter(boxes, (800, 800), ratios=(0.5, 1, 2),
                                  rng=np.random.default_rng(0), **OURS)
    assert fallback.tolist() == [True, True, False]
    assert np.allclose(out[:2], boxes[:2])
    assert box_iou(out[2:], boxes[2:])[0, 0] > 0.5


def test_anchor_jitter_draws_every_qualifying_anchor():
    box = np.array([[20, 20, 52, 52]], np.float32)
    grid = _grid(stride=4, sizes=(32, ), ratios=(1, ))
    qualifying = box_iou(grid, box)[:, 0] > 0.5
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        out, _ = anchor_jitter(box, IMG_WH, stride=4, sizes=(32, ),
                               ratios=(1, ), rng=rng, **OURS)
        seen.add(int(np.abs(grid - out[0]).max(axis=1).argmin()))
    assert seen == set(np.nonzero(qualifying)[0].tolist())


def test_torch_inputs_and_generators():
    boxes = torch.tensor([[10., 10., 50., 40.], [30., 20., 90., 78.]])
    gen = torch.Generator().manual_seed(3)
    out, fallback = anchor_jitter(boxes, IMG_WH, rng=gen)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert isinstance(fallback, torch.Tensor) and fallback.dtype == torch.bool
    again, _ = anchor_jitter(boxes, IMG_WH,
                             rng=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    rel = relative_jitter(boxes, IMG_WH, rng=torch.Generator().manual_seed(0))
    assert isinstance(rel, torch.Tensor) and rel.shape == (2, 4)
    # numpy in, numpy out; global numpy seed reproduces
    np.random.seed(5)
    a = relative_jitter(boxes.numpy(), IMG_WH)
    np.random.seed(5)
    b = relative_jitter(boxes.numpy(), IMG_WH)
    assert isinstance(a, np.ndarray) and np.array_equal(a, b)
    with pytest.raises(TypeError):
        relative_jitter(boxes, IMG_WH, rng='seed')


def test_relative_jitter_stays_within_ratio():
    rng = np.random.default_rng(0)
    xy = rng.uniform(20, 40, size=(200, 2))
    wh = rng.uniform(10, 30, size=(200, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    out = relative_jitter(boxes, (200, 200), ratio=0.1, rng=rng)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    nw, nh = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    cx, ncx = boxes[:, 0::2].mean(1), out[:, 0::2].mean(1)
    cy, ncy = boxes[:, 1::2].mean(1), out[:, 1::2].mean(1)
    tol = 1e-4
    assert (np.abs(nw / w - 1) <= 0.1 + tol).all()
    assert (np.abs(nh / h - 1) <= 0.1 + tol).all()
    assert (np.abs(ncx - cx) <= 0.1 * w + tol).all()
    assert (np.abs(ncy - cy) <= 0.1 * h + tol).all()
    assert not np.allclose(out, boxes)
    assert np.allclose(relative_jitter(boxes, (200, 200), ratio=0.0), boxes)


@pytest.mark.parametrize('mode', ['anchor', 'relative'])
def test_jittered_boxes_inside_and_not_degenerate(mode):
    rng = np.random.default_rng(2)
    boxes = _random_boxes(rng, 100)
    if mode == 'anchor':
        out, _ = anchor_jitter(boxes, IMG_WH, rng=rng, clip_anchors=True)
    else:
        out = relative_jitter(boxes, IMG_WH, ratio=0.5, rng=rng)
    assert (out[:, :2] >= 0).all()
    assert (out[:, 2] <= IMG_WH[0]).all() and (out[:, 3] <= IMG_WH[1]).all()
    assert (out[:, 2] - out[:, 0] >= 1 - 1e-5).all()
    assert (out[:, 3] - out[:, 1] >= 1 - 1e-5).all()
    empty = np.zeros((0, 4), np.float32)
    assert relative_jitter(empty, IMG_WH).shape == (0, 4)
    assert anchor_jitter(empty, IMG_WH)[0].shape == (0, 4)


def _results(boxes, ids=None):
    n = len(boxes)
    return dict(
        img=np.zeros((IMG_WH[1], IMG_WH[0], 3), np.uint8),
        img_shape=(IMG_WH[1], IMG_WH[0]), img_path='x.jpg',
        gt_bboxes=HorizontalBoxes(np.asarray(boxes, np.float32)),
        gt_bboxes_labels=np.arange(n, dtype=np.int64),
        gt_ignore_flags=np.zeros(n, bool),
        gt_instances_ids=np.arange(n, dtype=np.int64) + 10
        if ids is None else ids)


def test_transform_anchor_mode_counts_fallbacks():
    boxes = np.array([[10, 10, 50, 40], [40, 40, 42, 42], [5, 30, 70, 75]],
                     np.float32)
    t = RandomBoxJitter(mode='anchor', stride=8, sizes=(16, 32, 64),
                        ratios=(0.5, 1, 2), **OURS)
    np.random.seed(0)
    res = t(_results(boxes))
    out = res['gt_bboxes']
    assert isinstance(out, HorizontalBoxes) and len(out) == 3
    assert res['gt_instances_ids'].tolist() == [10, 11, 12]
    assert res['gt_bboxes_labels'].tolist() == [0, 1, 2]
    assert t.num_fallbacks == 1 and t.num_jittered == 3
    ious = box_iou(out.numpy(), boxes).diagonal()
    assert (ious[[0, 2]] > 0.5).all()
    assert np.allclose(out.numpy()[1], boxes[1])
    t(_results(boxes))
    assert t.num_fallbacks == 2 and t.num_jittered == 6
    # same seed, same boxes
    np.random.seed(0)
    again = RandomBoxJitter(mode='anchor', stride=8, sizes=(16, 32, 64),
                            ratios=(0.5, 1, 2), **OURS)(
        _results(boxes))['gt_bboxes'].numpy()
    assert np.array_equal(again, out.numpy())


def test_transform_prob_and_views():
    boxes = np.array([[10, 10, 50, 40], [30, 20, 90, 78]], np.float32)
    t0 = RandomBoxJitter(mode='relative', prob=0.0)
    assert np.array_equal(t0(_results(boxes))['gt_bboxes'].numpy(), boxes)
    assert t0.num_jittered == 0

    src = _results(boxes)
    v1 = make_view(src, np.zeros((40, 48, 3), np.uint8), np.eye(3),
                   boxes=boxes / 2, ids=np.array([3, 4]))
    v2 = make_view(src, np.zeros((40, 48, 3), np.uint8), np.eye(3),
                   boxes=boxes / 2, ids=np.array([3, 4]))
    src['views'] = dict(v1=v1, v2=v2)
    t = RandomBoxJitter(mode='relative', jitter_ratio=0.2, views=['v1'])
    res = t(src)
    new = res['views']['v1']['gt_bboxes'].numpy()
    assert not np.allclose(new, boxes / 2)
    assert (new[:, 2] <= 48).all() and (new[:, 3] <= 40).all()
    assert np.array_equal(res['views']['v2']['gt_bboxes'].numpy(), boxes / 2)
    assert np.array_equal(res['gt_bboxes'].numpy(), boxes)
    assert res['views']['v1']['gt_instances_ids'].tolist() == [3, 4]
    with pytest.raises(KeyError, match='v3'):
        RandomBoxJitter(views=['v3'])(res)
    with pytest.raises(ValueError):
        RandomBoxJitter(mode='gaussian')
    text = repr(t)
    assert 'relative' in text and "views=['v1']" in text


def test_transform_numpy_boxes_and_empty():
    res = _results(np.zeros((0, 4), np.float32))
    res = RandomBoxJitter()(res)
    assert len(res['gt_bboxes']) == 0
    res = _results(np.array([[10, 10, 50, 40]], np.float32))
    res['gt_bboxes'] = res['gt_bboxes'].numpy()
    out = RandomBoxJitter(mode='relative')(res)['gt_bboxes']
    assert isinstance(out, np.ndarray) and out.shape == (1, 4)
