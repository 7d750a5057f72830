# Copyright (c) mmselfdet contributors. All rights reserved.
"""InsLoc's official anchor jitter (issue 16): ``anchor_jitter``'s defaults
against an anchor set and an NMS-survivor distribution computed here,
independently, from the rule of the official ``AnchorAugHead``
(limbo0000/InstanceLoc): stride-16 grid, sizes 32-256, ratios h / w in
(0.5, 0.75, 1, 1.5, 2), centres on the grid points, unclipped anchors,
IoU > 0.5, NMS(0.7) on uniform random scores, one survivor at random."""
import itertools
import math

import numpy as np
import pytest

from mmselfdet.datasets.transforms.box_jitter import RandomBoxJitter
from mmselfdet.structures.box_ops import anchor_jitter

IMG_WH = (256, 256)  # InsLoc's composite size
# a 90x90 pasted box: exactly six anchors (size 64, ratios 0.75 and 1, at
# four grid points) have IoU > 0.5 (0.506 each); no other exceeds 0.494
BOX = np.array([[40, 60, 130, 150]], np.float32)
DRAWS = 4000


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (union - inter)


def _official_anchors(img_wh=IMG_WH, stride=16, sizes=(32, 64, 128, 256),
                      ratios=(0.5, 0.75, 1.0, 1.5, 2.0)):
    """mmdet 2.x AnchorGenerator(scales 2-16, strides [16],
    center_offset 0): centres (i * 16, j * 16), w = s / sqrt(r),
    h = s * sqrt(r), not clipped."""
    out = []
    for j in range(math.ceil(img_wh[1] / stride)):
        for i in range(math.ceil(img_wh[0] / stride)):
            for s in sizes:
                for r in ratios:
                    w, h = s / math.sqrt(r), s * math.sqrt(r)
                    out.append((i * stride - w / 2, j * stride - h / 2,
                                i * stride + w / 2, j * stride + h / 2))
    return np.array(out)


def _nms_pick_distribution(cands, thr=0.7):
    """P(pick = candidate) when NMS(thr) runs on i.i.d. uniform scores and
    one survivor is drawn uniformly: the mean over all score orders."""
    n = len(cands)
    iou = [[_iou(a, b) for b in cands] for a in cands]
    prob = np.zeros(n)
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        kept, suppressed = [], set()
        for i in order:  # highest score first
            if i in suppressed:
                continue
            kept.append(i)
            suppressed.update(j for j in range(n) if iou[i][j] > thr)
        prob[kept] += 1 / len(kept)
    return prob / len(orders)


def _picked(out, cands):
    """Index into ``cands`` of each output box (exact match required)."""
    dist = np.abs(out[:, None, :] - cands[None].astype(np.float32)).max(-1)
    assert (dist.min(1) < 1e-3).all(), 'a box that is no candidate anchor'
    return dist.argmin(1)


def _qualifying():
    anchors = _official_anchors()
    ious = np.array([_iou(BOX[0], a) for a in anchors])
    return anchors[ious > 0.5]


def test_qualifying_anchors_of_a_known_box():
    cands = _qualifying()
    assert len(cands) == 6  # the box was chosen for it
    # sizes 64 at ratios 0.75 / 1, centres (80, 96), (80, 112), (96, 96),
    # (96, 112): each of those and nothing else can be drawn
    centres = sorted({((a[0] + a[2]) / 2, (a[1] + a[3]) / 2) for a in cands})
    assert centres == [(80, 96), (80, 112), (96, 96), (96, 112)]
    out, fallback = anchor_jitter(np.repeat(BOX, DRAWS, 0), IMG_WH,
                                  rng=np.random.default_rng(0))
    assert not fallback.any()
    assert set(_picked(out, cands).tolist()) == set(range(6))


def test_nms_runs_before_the_random_pick():
    """The pick frequencies follow the NMS-survivor distribution (1/8 or
    1/4 per anchor: pairs with IoU 0.76 share one survivor), not the
    uniform 1/6 over all qualifying anchors (old rule)."""
    cands = _qualifying()
    want = _nms_pick_distribution(cands)
    assert sorted(np.round(want, 4).tolist()) == [0.125] * 4 + [0.25] * 2
    out, _ = anchor_jitter(np.repeat(BOX, DRAWS, 0), IMG_WH,
                           rng=np.random.default_rng(1))
    freq = np.bincount(_picked(out, cands), minlength=6) / DRAWS
    # binomial std <= 0.007 at 4000 draws: 0.025 is > 3.5 sigma, while the
    # uniform rule is 0.042 / 0.083 away from the NMS distribution
    np.testing.assert_allclose(freq, want, atol=0.025)
    # the switch: uniform over every qualifying anchor
    out, _ = anchor_jitter(np.repeat(BOX, DRAWS, 0), IMG_WH, nms_thr=None,
                           rng=np.random.default_rng(2))
    freq = np.bincount(_picked(out, cands), minlength=6) / DRAWS
    np.testing.assert_allclose(freq, np.full(6, 1 / 6), atol=0.025)


def test_anchors_unclipped_by_default_and_clipped_by_switch():
    # a box in the corner: the official anchors centred on (0, 0) or
    # (16, 16) reach outside the image; clip_anchors keeps them inside
    box = np.repeat(np.array([[0, 0, 40, 40]], np.float32), 400, 0)
    out, _ = anchor_jitter(box, IMG_WH, rng=np.random.default_rng(0))
    assert (out[:, :2] < 0).any()
    cands = _official_anchors()
    _picked(out, cands)  # every result is an official anchor as it is
    out, _ = anchor_jitter(box, IMG_WH, clip_anchors=True,
                           rng=np.random.default_rng(0))
    assert (out >= 0).all() and (out <= 256).all()


def test_fallback_draws_among_the_best_anchors_or_keeps_the_box():
    tiny = np.repeat(np.array([[100, 100, 104, 104]], np.float32), 50, 0)
    out, fallback = anchor_jitter(tiny, IMG_WH, rng=np.random.default_rng(0),
                                  fallback_topk=30)
    assert fallback.all()
    anchors = _official_anchors()
    ious = np.array([_iou(tiny[0], a) for a in anchors])
    kth = np.sort(ious)[::-1][29]  # the 30 best IoUs (ties: any of them)
    picked = anchors[_picked(out, anchors)]
    assert all(_iou(tiny[0], a) >= kth - 1e-6 for a in picked)
    assert len({tuple(a) for a in picked}) > 1  # a random draw
    out, fallback = anchor_jitter(tiny, IMG_WH, fallback='keep')
    assert fallback.all() and np.array_equal(out, tiny)
    with pytest.raises(ValueError, match='fallback'):
        anchor_jitter(tiny, IMG_WH, fallback='drop')


def test_transform_uses_the_official_rule_and_stays_inside():
    t = RandomBoxJitter(mode='anchor')
    assert t.anchor_cfg['ratios'] == (0.5, 0.75, 1.0, 1.5, 2.0)
    assert t.anchor_cfg['nms_thr'] == 0.7
    assert t.anchor_cfg['center_offset'] == 0.0
    cands = _qualifying()
    np.random.seed(0)
    seen = set()
    for _ in range(60):
        res = t(dict(img=np.zeros((256, 256, 3), np.uint8),
                     img_shape=(256, 256), gt_bboxes=BOX.copy()))
        seen.add(int(_picked(np.asarray(res['gt_bboxes']), cands)[0]))
    assert seen <= set(range(6)) and len(seen) > 2
    assert 'nms_thr=0.7' in repr(t)
