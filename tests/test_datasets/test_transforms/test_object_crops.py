# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.datasets.transforms.object_crops import (
    ObjectAwareCrops,
    collect_boxes,
    sample_crop_in,
)
from mmselfdet.datasets.transforms.views import map_boxes

H, W = 80, 96
# four disjoint rectangles, each painted in its own colour
BOXES = np.array([[4, 4, 34, 30], [50, 6, 90, 36], [8, 44, 40, 76],
                  [56, 48, 92, 74]], np.float32)
COLOURS = np.array([[250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0]],
                   np.uint8)
# invalid proposals appended after the good ones: empty, outside, NaN
BAD = np.array([[20, 20, 20, 50], [200, 10, 240, 40], [-40, -40, -2, -2],
                [np.nan, 1, 5, 5]], np.float32)


def scene(boxes=BOXES):
    img = np.full((H, W, 3), 30, np.uint8)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), COLOURS):
        img[y1:y2, x1:x2] = colour
    return img


def results(proposals=BOXES, scores=None):
    res = dict(img=scene(), img_shape=(H, W), ori_shape=(H, W), img_id=3,
               img_path='s.jpg', proposals=np.asarray(proposals, np.float32))
    if scores is not None:
        res['proposals_scores'] = np.asarray(scores, np.float32)
    return res


def make(**kwargs):
    cfg = dict(out_size=32, interpolation='nearest', min_box_size=16,
               min_crop_size=8)
    cfg.update(kwargs)
    return ObjectAwareCrops(**cfg)


def check_colours(view, colour_of):
    """Pixels inside each view box (1 px margin) have the box's colour."""
    img = view['img']
    for box, i in zip(view['gt_bboxes'].numpy(), view['gt_instances_ids']):
        x1, y1 = int(np.ceil(box[0])) + 1, int(np.ceil(box[1])) + 1
        x2, y2 = int(np.floor(box[2])) - 1, int(np.floor(box[3])) - 1
        if x2 <= x1 or y2 <= y1:
            continue
        patch = img[y1:y2, x1:x2].reshape(-1, 3)
        assert (patch == colour_of[int(i)]).all(), (i, box)


def check_geometry(view, source_boxes):
    """Each view box is its source box mapped by the view's homography and
    clipped to the view."""
    h, w = view['img'].shape[:2]
    ids = view['gt_instances_ids']
    expected = map_boxes(source_boxes[ids], view['homography_matrix'])
    expected[:, 0::2] = expected[:, 0::2].clip(0, w)
    expected[:, 1::2] = expected[:, 1::2].clip(0, h)
    assert np.allclose(view['gt_bboxes'].numpy(), expected, atol=1e-3)


@pytest.mark.parametrize('mode', ['obj_obj_dilate', 'obj_scene'])
def test_views_show_the_boxes(mode):
    # view 1 is the object crop, inside the box (no context)
    t = make(mode=mode, swap_prob=0.0, small_box='min_crop')
    proposals = np.concatenate([BOXES, BAD])
    picked = set()
    for seed in range(12):
        np.random.seed(seed)
        res = t(results(proposals))
        views = res['views']
        assert set(views) == {'view1', 'view2'}
        v1, v2 = views['view1'], views['view2']
        obj = v1['object_id']
        assert 0 <= obj < 4 and v2['object_id'] == obj
        picked.add(obj)
        # view 1 lies inside the object: all of it is the object's colour
        assert (v1['img'].reshape(-1, 3) == COLOURS[obj]).all()
        assert v1['img'].shape == (32, 32, 3)
        for view in (v1, v2):
            ids = view['gt_instances_ids']
            assert ids.max(initial=0) < 4  # invalid proposals never carried
            check_colours(view, COLOURS)
            check_geometry(view, BOXES)
        assert obj in v1['gt_instances_ids'].tolist()
    assert t.num_fallbacks == 0
    assert len(picked) > 1


def test_dilated_view_contains_the_box_region():
    t = make(mode='obj_obj_dilate', crop_scale=(1.0, 1.0), dilation=(0.1, 0.1),
             swap_prob=0.0)
    np.random.seed(0)
    res = t(results(BOXES[:1]))
    v2 = res['views']['view2']
    # crop_scale 1: the whole dilated box (10 % of the image in total, 5 %
    # each side), aspect clamped to 3/4..4/3 and centred
    inv = np.linalg.inv(v2['homography_matrix'])
    region = map_boxes(np.array([[0, 0, 32, 32]]), inv)[0]
    dilated = BOXES[0] + np.array([-4.8, -4, 4.8, 4])
    dilated = np.clip(dilated, 0, [W, H, W, H])
    assert region[0] >= np.floor(dilated[0]) - 1e-3
    assert region[2] <= np.ceil(dilated[2]) + 1e-3
    assert region[1] >= np.floor(dilated[1]) - 1e-3
    assert region[3] <= np.ceil(dilated[3]) + 1e-3
    assert region[2] - region[0] > BOXES[0, 2] - BOXES[0, 0]


def test_fallback_to_scene_crops_and_invalid_proposals():
    t = make()
    np.random.seed(1)
    res = t(results(BAD))
    assert t.num_fallbacks == 1
    for view in res['views'].values():
        assert view['object_id'] == -1
        assert len(view['gt_bboxes']) == 0
    t(results(np.zeros((0, 4), np.float32)))
    # boxes below min_box_size are carried but never drawn
    small = np.array([[60, 60, 70, 70]], np.float32)
    res = t(results(small))
    assert t.num_fallbacks == 3
    assert res['views']['view1']['object_id'] == -1


def test_scene_scene_and_score_selection():
    t = make(mode='scene_scene')
    res = t(results())
    assert t.num_fallbacks == 0
    assert all(v['object_id'] == -1 for v in res['views'].values())
    assert 'scene_scene' in repr(t)
    no_props = results()
    del no_props['proposals']
    t(no_props)  # the baseline does not need boxes
    with pytest.raises(KeyError, match='LoadProposals'):
        make()(no_props)

    t = make(select='score')
    for seed in range(5):
        np.random.seed(seed)
        res = t(results(scores=[0, 0, 1, 0]))
        assert res['views']['view1']['object_id'] == 2


def test_gt_bboxes_source_keeps_ids_and_labels():
    res = results()
    del res['proposals']
    res['gt_bboxes'] = HorizontalBoxes(BOXES.copy())
    res['gt_bboxes_labels'] = np.array([7, 8, 9, 5], np.int64)
    res['gt_instances_ids'] = np.array([10, 11, 12, 13], np.int64)
    np.random.seed(0)
    out = make(box_source='gt_bboxes')(res)
    colour_of = {10 + i: c for i, c in enumerate(COLOURS)}
    label_of = {10: 7, 11: 8, 12: 9, 13: 5}
    for view in out['views'].values():
        assert 10 <= view['object_id'] <= 13
        check_colours(view, colour_of)
        assert [label_of[int(i)] for i in view['gt_instances_ids']] == \
            view['gt_bboxes_labels'].tolist()
    # the source boxes are untouched
    assert np.array_equal(out['gt_bboxes'].numpy(), BOXES)


def test_same_seed_same_views():
    t = make()
    outs = []
    for _ in range(2):
        np.random.seed(7)
        outs.append(t(results())['views'])
    for name in ('view1', 'view2'):
        assert np.array_equal(outs[0][name]['img'], outs[1][name]['img'])
        assert np.array_equal(outs[0][name]['homography_matrix'],
                              outs[1][name]['homography_matrix'])


def test_proposals_follow_earlier_geometry():
    """Proposals are in loaded-image pixels; after a resize they are mapped
    by the homography before cropping."""
    res = results()
    res['img'] = np.repeat(np.repeat(res['img'], 2, axis=0), 2, axis=1)
    res['homography_matrix'] = np.diag([2, 2, 1]).astype(np.float32)
    source = collect_boxes(res, 'proposals')
    assert np.allclose(source.boxes, BOXES * 2)
    np.random.seed(0)
    view = make()(res)['views']['view1']
    check_colours(view, COLOURS)
    check_geometry(view, BOXES)  # homography: original image -> view


def test_sample_crop_in_stays_in_region():
    np.random.seed(0)
    for _ in range(50):
        x0, y0, x1, y1 = sample_crop_in((10, 20, 40, 35), (0.2, 1.0),
                                        (0.75, 4 / 3))
        assert 10 <= x0 < x1 <= 40 and 20 <= y0 < y1 <= 35
    # impossible draws fall back to the centred, aspect-clamped region
    assert sample_crop_in((0, 0, 40, 10), (1.0, 1.0), (1.0, 1.0)) == \
        (15, 0, 25, 10)


def test_chain_with_pack_views():
    pipe = Compose([
        dict(type='ObjectAwareCrops', out_size=32, interpolation='nearest',
             min_crop_size=8),
        dict(type='PackViews', pipelines=dict(
            view1=[dict(type='RandomFlip', prob=0.5),
                   dict(type='PackViewInputs')],
            view2=[dict(type='RandomFlip', prob=0.5),
                   dict(type='PackViewInputs')])),
    ])
    for seed in range(4):
        np.random.seed(seed)
        out = pipe(results())
        assert set(out['inputs']) == {'view1', 'view2'}
        assert out['inputs']['view1'].shape == (3, 32, 32)
        ids = {}
        for name, sample in out['data_samples'].items():
            inst = sample.gt_instances
            ids[name] = inst.instances_ids.tolist()
            # the flip moved the boxes and the homography says so
            boxes = inst.bboxes.tensor.numpy()
            expected = map_boxes(BOXES[inst.instances_ids.numpy()],
                                 sample.metainfo['homography_matrix'])
            expected = expected.clip(0, 32)
            assert np.allclose(boxes, expected, atol=1e-3)
            assert sample.metainfo['img_id'] == 3
        assert len(ids['view1']) >= 1


# ------------------------------------------------- issue 16: fidelity items
def view_region(view):
    """The view's crop region in the source image (x1y1x2y2)."""
    h, w = view['img'].shape[:2]
    inv = np.linalg.inv(view['homography_matrix'])
    return map_boxes(np.array([[0, 0, w, h]]), inv)[0]


def big_box_results(box):
    res = results(np.array([box], np.float32))
    return res


def test_dilation_grows_by_d_times_the_image_size_in_total():
    """'Dilated by 10-20 % of the image size': the region grows by d * W in
    width (d / 2 per side) and d * H in height, clipped to the image."""
    box = [40, 30, 80, 70]
    t = make(mode='obj_obj_dilate', dilation=(0.2, 0.2), crop_scale=(1, 1),
             ratio=(0.1, 10.0))
    for seed in range(6):
        np.random.seed(seed)
        views = t(big_box_results(box))['views']
        regions = [view_region(v) for v in views.values()]
        dilated = max(regions, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]))
        # d W / 2 = 9.6 px left and right, d H / 2 = 8 px up and down,
        # then the integer pixel region holding it
        want = [np.floor(40 - 9.6), 30 - 8, np.ceil(80 + 9.6), 70 + 8]
        assert np.allclose(dilated, want, atol=1e-3), dilated


def test_dilate_box_formulas_and_clipping():
    from mmselfdet.datasets.transforms.object_crops import dilate_box
    box = [40, 30, 60, 50]  # in a 100 x 80 image
    # paper: total growth d W = 20 px wide, d H = 16 px high
    assert np.allclose(dilate_box(box, 0.2, 100, 80), [30, 22, 70, 58])
    # official: coordinates scaled by (1 - d) and (1 + d)
    assert np.allclose(dilate_box(box, 0.2, 100, 80, 'coords'),
                       [32, 24, 72, 60])
    # both are clipped to the image
    edge = [2, 3, 95, 78]
    assert np.allclose(dilate_box(edge, 0.2, 100, 80), [0, 0, 100, 80])
    assert np.allclose(dilate_box(edge, 0.2, 100, 80, 'coords'),
                       [1.6, 2.4, 100, 80])
    assert np.allclose(dilate_box(box, 0.0, 100, 80), box)
    with pytest.raises(ValueError, match='dilation_mode'):
        dilate_box(box, 0.1, 100, 80, 'side')
    with pytest.raises(ValueError, match='dilation_mode'):
        make(dilation_mode='side')


def test_coords_dilation_switch_in_the_transform():
    box = [40, 30, 80, 70]
    t = make(dilation=(0.1, 0.1), dilation_mode='coords', crop_scale=(1, 1),
             ratio=(0.1, 10.0))
    np.random.seed(0)
    views = t(big_box_results(box))['views']
    regions = [view_region(v) for v in views.values()]
    dilated = max(regions, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]))
    assert np.allclose(dilated, [36, 27, 88, 77], atol=1e-3)
    assert "dilation_mode='coords'" in repr(t)


def scene_first_rate(t, draws, seed=0):
    """Fraction of draws whose first view is the scene crop (the whole
    image with crop_scale 1) rather than the object crop."""
    np.random.seed(seed)
    res = results(BOXES[1:2])
    first = 0
    for _ in range(draws):
        views = t(dict(res))['views']
        v1, v2 = (view_region(v) for v in views.values())
        assert views['view1']['object_id'] == views['view2']['object_id'] == 0
        # crop_scale 1: the scene crop covers (almost) the whole image, the
        # object crop lies inside the box
        whole = [(r[2] - r[0]) * (r[3] - r[1]) >= 0.95 * W * H
                 for r in (v1, v2)]
        assert sum(whole) == 1  # one scene view, one object view
        first += whole[0]
    return first / draws


def test_query_key_swap_is_random_and_fair_by_default():
    """The official code returns (object, dilated) or (dilated, object) with
    probability 1/2 each, so the object crop is the query half the time."""
    t = make(mode='obj_scene', crop_scale=(1, 1))
    rate = scene_first_rate(t, 1000)
    # binomial(1000, 0.5): sd 0.016, the bounds are 4.4 sd away
    assert 0.43 < rate < 0.57, rate
    assert scene_first_rate(make(mode='obj_scene', crop_scale=(1, 1),
                                 swap_prob=0.0), 50) == 0.0
    assert scene_first_rate(make(mode='obj_scene', crop_scale=(1, 1),
                                 swap_prob=1.0), 50) == 1.0
    with pytest.raises(ValueError, match='swap_prob'):
        make(swap_prob=1.5)


@pytest.mark.parametrize('box, want', [
    # 20 x 16 < 32 (out_size): 16 px of context on every side
    ([40, 30, 60, 46], [24, 14, 76, 62]),
    # near the corner: the context is clipped to the image
    ([2, 2, 20, 20], [0, 0, 36, 36]),
    # 45 px wide (no context in x), 16 px high (16 px above and below)
    ([10, 30, 55, 46], [10, 14, 55, 62]),
    # large enough in both directions: the box itself
    ([20, 20, 70, 60], [20, 20, 70, 60]),
])
def test_small_boxes_get_context_as_the_official_code(box, want):
    """Official rule (extract_bb): a box narrower (lower) than the output
    size gets half the output size of context on each side."""
    t = make(mode='obj_scene', crop_scale=(1, 1), ratio=(0.1, 10.0),
             swap_prob=0.0)
    np.random.seed(0)
    view = t(results(np.array([box], np.float32)))['views']['view1']
    assert np.allclose(view_region(view), want, atol=1e-3)


def test_crops_of_a_small_box_keep_its_context():
    """With the default (0.2, 1) scale a crop covers at least a fifth of the
    box + context region, never a sliver of the small box upscaled."""
    # out_size 32, scale (0.2, 1)
    t = make(mode='obj_scene', swap_prob=0.0, min_box_size=4)
    np.random.seed(1)
    box = np.array([[44, 36, 52, 44]], np.float32)  # 8 x 8 px
    region = np.array([28, 20, 68, 60])  # +16 each side: 40 x 40
    for _ in range(100):
        crop = view_region(t(results(box))['views']['view1'])
        assert (crop[:2] >= region[:2] - 1e-3).all()
        assert (crop[2:] <= region[2:] + 1e-3).all()
        area = (crop[2] - crop[0]) * (crop[3] - crop[1])
        assert area >= 0.2 * 40 * 40 - 2 * 40, area  # rounding of sides


def test_min_crop_switch_raises_the_scale_bound_inside_the_box():
    """Ours: no context; the lower bound of the crop area is raised so that
    a crop keeps min_crop_size**2 source pixels of the box."""
    t = make(mode='obj_scene', small_box='min_crop', min_crop_size=12,
             swap_prob=0.0)
    np.random.seed(2)
    box = np.array([[40, 30, 60, 46]], np.float32)  # 20 x 16 = 320 px^2
    assert t._box_scale((40, 30, 60, 46)) == (144 / 320, 1.0)
    for _ in range(50):
        crop = view_region(t(results(box))['views']['view1'])
        assert (crop[:2] >= box[0, :2] - 1e-3).all()
        assert (crop[2:] <= box[0, 2:] + 1e-3).all()
        assert (crop[2] - crop[0]) * (crop[3] - crop[1]) >= 144 - 2 * 16
    with pytest.raises(ValueError, match='small_box'):
        make(small_box='grow')


def drawn_objects(t, proposals, draws, scores=None, seed=0):
    np.random.seed(seed)
    res = results(np.asarray(proposals, np.float32), scores)
    return [t(dict(res))['views']['view1']['object_id'] for _ in range(draws)]


def test_proposal_filter_before_uniform_sampling():
    """Default: SoCo's shape filter (width and height >= min_box_size,
    aspect w / h in [1/3, 3]) then a uniform draw."""
    thin = [4, 40, 94, 56]  # 90 x 16: aspect 5.6
    tall = [70, 2, 86, 78]  # 16 x 76: aspect 0.21
    props = [thin, BOXES[0], tall, BOXES[3]]
    objects = drawn_objects(make(), props, 60)
    assert set(objects) == {1, 3}
    # each of the two kept boxes about half the time (binomial(60, 0.5))
    assert 15 <= objects.count(1) <= 45
    # the filter can be switched off
    assert set(drawn_objects(make(aspect_range=None), props, 60)) == \
        {0, 1, 2, 3}


def test_topk_by_score_switch():
    props = list(BOXES) + [[60, 50, 90, 78]]
    scores = [0.1, 0.9, 0.3, 0.8, 0.2]
    objects = drawn_objects(make(topk=2), props, 40, scores)
    assert set(objects) == {1, 3}
    # without scores the first k rows (a proposal file is in rank order)
    assert set(drawn_objects(make(topk=2), props, 40)) == {0, 1}
    assert 'topk=2' in repr(make(topk=2))
    with pytest.raises(ValueError, match='topk'):
        make(topk=0)
