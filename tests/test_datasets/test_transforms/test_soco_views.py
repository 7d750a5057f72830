# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.datasets.transforms.box_jitter import RandomBoxJitter
from mmselfdet.datasets.transforms.soco_views import SoCoViews, visible_fraction
from mmselfdet.datasets.transforms.views import map_boxes

H, W = 72, 96
# six disjoint rectangles, each painted in its own colour
BOXES = np.array([[2, 2, 30, 30], [34, 4, 62, 32], [66, 2, 94, 30],
                  [2, 40, 30, 70], [34, 38, 62, 68], [66, 40, 94, 70]],
                 np.float32)
COLOURS = np.array([[250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0],
                    [0, 250, 250], [250, 0, 250]], np.uint8)
BAD = np.array([[20, 20, 20, 50], [200, 10, 240, 40], [-40, -40, -2, -2],
                [10, 10, 5, 5]], np.float32)
NAMES = ('v1', 'v2', 'v3')


def results(proposals=BOXES):
    img = np.full((H, W, 3), 30, np.uint8)
    for (x1, y1, x2, y2), colour in zip(BOXES.astype(int), COLOURS):
        img[y1:y2, x1:x2] = colour
    return dict(img=img, img_shape=(H, W), ori_shape=(H, W), img_id=1,
                img_path='s.jpg', proposals=np.asarray(proposals, np.float32))


def make(**kwargs):
    cfg = dict(v1_size=64, v2_size=64, v3_size=32, interpolation='nearest')
    cfg.update(kwargs)
    return SoCoViews(**cfg)


# our reading, a switch: the same K boxes, each half visible in V2 and V3
JOINT = dict(box_selection='joint', min_visible=0.5, pad=False)


def crop_region(view):
    """The view's crop region in the original image."""
    h, w = view['img'].shape[:2]
    inv = np.linalg.inv(view['homography_matrix'])
    return map_boxes(np.array([[0, 0, w, h]]), inv)[0]


def num_visible(views, boxes=BOXES, min_visible=0.5):
    visible = np.ones(len(boxes), bool)
    for name in ('v2', 'v3'):
        frac = visible_fraction(boxes, crop_region(views[name]))
        visible &= frac >= min_visible - 1e-4
    return int(visible.sum())


def check_view(view, size, colour_of, source_boxes):
    img = view['img']
    assert img.shape == (size, size, 3)
    boxes = view['gt_bboxes'].numpy()
    ids = view['gt_instances_ids']
    # geometry: each box is its source box mapped by the view's homography
    expected = map_boxes(source_boxes[ids], view['homography_matrix'])
    assert np.allclose(boxes, expected.clip(0, size), atol=1e-3)
    # pixels: inside each box (1 px margin) the box's colour
    for box, i in zip(boxes, ids):
        x1, y1 = int(np.ceil(box[0])) + 1, int(np.ceil(box[1])) + 1
        x2, y2 = int(np.floor(box[2])) - 1, int(np.floor(box[3])) - 1
        if x2 > x1 and y2 > y1:
            assert (img[y1:y2, x1:x2].reshape(-1, 3) == colour_of[i]).all()


def test_joint_k_boxes_visible_in_all_views():
    t = make(num_boxes=3, crop_scale=(0.7, 1.0), **JOINT)
    proposals = np.concatenate([BOXES, BAD])
    counts = []
    for seed in range(10):
        np.random.seed(seed)
        views = t(results(proposals))['views']
        assert tuple(views) == NAMES
        ids = [views[n]['gt_instances_ids'].tolist() for n in NAMES]
        assert ids[0] == ids[1] == ids[2]
        # K boxes when K are visible, all visible ones otherwise
        counts.append(len(ids[0]))
        assert len(ids[0]) == min(3, num_visible(views))
        assert len(set(ids[0])) == len(ids[0])
        assert max(ids[0]) < 6  # invalid proposals are never selected
        for name, size in zip(NAMES, (64, 64, 32)):
            check_view(views[name], size, COLOURS, BOXES)
        # visibility: each selected box keeps >= half its area in V2 / V3
        for name in ('v2', 'v3'):
            frac = visible_fraction(BOXES[ids[0]], crop_region(views[name]))
            assert (frac >= 0.5 - 1e-4).all()
    assert 3 in counts
    # V1 is the whole image, aspect not kept
    assert np.allclose(views['v1']['homography_matrix'],
                       np.diag([64 / W, 64 / H, 1]), atol=1e-6)
    assert t.num_fallbacks == 0


def test_joint_fewer_boxes_than_k_and_v3_from_v2():
    t = make(num_boxes=4, crop_scale=(1.0, 1.0), ratio=(0.5, 2.0),
             v3_crop='from_v2', **JOINT)
    np.random.seed(0)
    views = t(results(BOXES[:2]))['views']
    for name in NAMES:
        assert sorted(views[name]['gt_instances_ids'].tolist()) == [0, 1]
    assert np.allclose(views['v3']['homography_matrix'],
                       np.diag([0.5, 0.5, 1]) @ views['v2']['homography_matrix'],
                       atol=1e-6)


@pytest.mark.parametrize('proposals', [BAD, np.zeros((0, 4), np.float32)])
@pytest.mark.parametrize('joint', [False, True])
def test_whole_image_fallback(proposals, joint):
    t = make(**(JOINT if joint else {}))
    np.random.seed(0)
    views = t(results(proposals))['views']
    assert t.num_fallbacks == 1 and t.num_retries == 0
    # per pair: the whole image, padded to K = 4 (V1 holds both pairs)
    counts = (1, 1, 1) if joint else (8, 4, 4)
    for name, size, count in zip(NAMES, (64, 64, 32), counts):
        view = views[name]
        assert view['gt_instances_ids'].tolist() == [-1] * count
        assert np.allclose(view['gt_bboxes'].numpy(),
                           [[0, 0, size, size]] * count)


def test_retries_then_fallback():
    # a small box in a corner is rarely half inside two 10 % crops
    corner = np.array([[0, 0, 12, 12]], np.float32)
    t = make(crop_scale=(0.1, 0.1), max_retries=2, **JOINT)
    for seed in range(20):
        np.random.seed(seed)
        views = t(results(corner))['views']
        ids = [views[n]['gt_instances_ids'].tolist() for n in NAMES]
        assert ids[0] == ids[1] == ids[2] and ids[0] in ([0], [-1])
    assert t.num_retries > 0 and t.num_fallbacks > 0
    assert t.num_retries <= 2 * 20


@pytest.mark.parametrize('joint', [False, True])
def test_gt_bboxes_source(joint):
    res = results()
    del res['proposals']
    res['gt_bboxes'] = HorizontalBoxes(BOXES.copy())
    res['gt_bboxes_labels'] = np.arange(6, dtype=np.int64) + 1
    res['gt_instances_ids'] = np.arange(6, dtype=np.int64) + 20
    np.random.seed(3)
    views = make(box_source='gt_bboxes', **(JOINT if joint else {}))(res)[
        'views']
    colour_of = {20 + i: c for i, c in enumerate(COLOURS)}
    if joint:
        ids = views['v1']['gt_instances_ids']
        assert len(ids) == min(4, num_visible(views))
    for name in NAMES:
        ids = views[name]['gt_instances_ids']
        assert set(ids.tolist()) <= set(range(20, 26))
        if joint:
            assert ids.tolist() == views['v1']['gt_instances_ids'].tolist()
        else:
            assert len(ids) == (8 if name == 'v1' else 4)
        assert views[name]['gt_bboxes_labels'].tolist() == (ids - 19).tolist()
        img = views[name]['img']
        for box, i in zip(views[name]['gt_bboxes'].numpy(), ids):
            x1, y1 = int(np.ceil(box[0])) + 1, int(np.ceil(box[1])) + 1
            x2, y2 = int(np.floor(box[2])) - 1, int(np.floor(box[3])) - 1
            if x2 > x1 and y2 > y1:
                assert (img[y1:y2, x1:x2] == colour_of[int(i)]).all()
    with pytest.raises(KeyError, match='LoadAnnotations'):
        make(box_source='gt_bboxes')(results())


def test_same_seed_same_output_and_repr():
    t = make()
    outs = []
    for _ in range(2):
        np.random.seed(11)
        outs.append(t(results())['views'])
    for name in NAMES:
        assert np.array_equal(outs[0][name]['img'], outs[1][name]['img'])
        assert np.array_equal(outs[0][name]['gt_bboxes'].numpy(),
                              outs[1][name]['gt_bboxes'].numpy())
    text = repr(t)
    assert 'num_boxes=4' in text and "v3_crop='independent'" in text
    # views add to those of an earlier view maker; a name clash is an error
    res = t(results())
    with pytest.raises(KeyError, match='already'):
        t(res)
    res = make(view_names=('a', 'b', 'c'))(res)
    assert set(res['views']) == {'v1', 'v2', 'v3', 'a', 'b', 'c'}
    with pytest.raises(ValueError):
        SoCoViews(min_visible=1.5)
    with pytest.raises(ValueError):
        SoCoViews(view_names=('a', 'a', 'b'))


def test_chain_with_jitter_and_pack_views():
    view = [dict(type='RandomFlip', prob=0.5), dict(type='PackViewInputs')]
    pipe = Compose([
        dict(type='SoCoViews', v1_size=64, v2_size=64, v3_size=32),
        dict(type='RandomBoxJitter', mode='relative', prob=0.5,
             views=['v1']),
        dict(type='PackViews', pipelines=dict(v1=view, v2=view, v3=view)),
    ])
    assert isinstance(pipe.transforms[1], RandomBoxJitter)
    for seed in range(4):
        np.random.seed(seed)
        out = pipe(results())
        samples = out['data_samples']
        ids = [samples[n].gt_instances.instances_ids.tolist() for n in NAMES]
        pairs = [samples[n].gt_instances.instances_pairs.tolist()
                 for n in NAMES]
        # V1 holds the V1-V2 copies, then the V1-V3 copies (K each)
        assert pairs == [[1] * 4 + [2] * 4, [1] * 4, [2] * 4]
        assert ids[0] == ids[1] + ids[2]
        assert out['inputs']['v3'].shape == (3, 32, 32)
        for name in ('v2', 'v3'):  # not jittered: exact geometry
            inst = samples[name].gt_instances
            size = out['inputs'][name].shape[-1]
            expected = map_boxes(BOXES[inst.instances_ids.numpy()],
                                 samples[name].metainfo['homography_matrix'])
            assert np.allclose(inst.bboxes.tensor.numpy(),
                               expected.clip(0, size), atol=1e-3)


def test_box_source_none_gives_views_and_geometry_only():
    """The end-to-end variant: views without boxes, but with the homography
    the model maps its heat-map boxes with; no proposals key needed."""
    t = make(box_source='none', crop_scale=(0.3, 0.6))
    res = results()
    del res['proposals']
    views = t(res)['views']
    assert set(views) == set(NAMES)
    for name, size in zip(NAMES, (64, 64, 32)):
        view = views[name]
        assert view['img'].shape == (size, size, 3)
        assert len(view['gt_bboxes']) == 0
        assert len(view['gt_instances_ids']) == 0
        # the homography maps the crop region onto the whole view
        region = crop_region(view)
        assert region[0] >= -1e-3 and region[2] <= W + 1e-3
    assert np.allclose(crop_region(views['v1']), [0, 0, W, H], atol=1e-3)
    area = np.prod(crop_region(views['v2'])[2:] - crop_region(views['v2'])[:2])
    assert 0.3 * H * W * 0.99 <= area <= 0.6 * H * W * 1.01
    assert t.num_fallbacks == 0
    with pytest.raises(ValueError, match='box_source'):
        make(box_source='heat')


# ------------------------------------------------- issue 16: fidelity items
def fixed_crops(t, crop2, crop3):
    """Make ``t`` draw the given V2 / V3 crop regions."""
    t._draw_crops = lambda width, height: (crop2, crop3)
    return t


def pair_rows(view, pair):
    ids = view['gt_instances_ids']
    if 'gt_instances_pairs' not in view:
        return ids.tolist()
    return ids[view['gt_instances_pairs'] == pair].tolist()


def test_boxes_are_chosen_per_pair_as_the_official_code():
    """Official: K proposals overlapping V1 and V2 and, separately, K
    overlapping V1 and V3 (any overlap), each list padded to K by
    repetition. Box 0 (left) is seen by V2 only, box 2 (right) by V3 only:
    each is used for its own pair, although no box is in both crops."""
    t = fixed_crops(make(num_boxes=4), (0, 0, 32, 72), (64, 0, 96, 72))
    np.random.seed(0)
    views = t(results(BOXES[[0, 2]]))['views']
    assert t.num_fallbacks == 0
    assert pair_rows(views['v1'], 1) == [0] * 4
    assert pair_rows(views['v1'], 2) == [1] * 4
    assert views['v2']['gt_instances_ids'].tolist() == [0] * 4
    assert views['v3']['gt_instances_ids'].tolist() == [1] * 4
    for name, size in zip(NAMES, (64, 64, 32)):
        check_view(views[name], size, COLOURS[[0, 2]], BOXES[[0, 2]])


def test_any_overlap_makes_a_box_visible_and_k_boxes_are_drawn():
    t = fixed_crops(make(num_boxes=2), (0, 0, 36, 72), (0, 0, 96, 72))
    counts = {}
    for seed in range(40):
        np.random.seed(seed)
        views = t(results())['views']
        v2 = views['v2']['gt_instances_ids'].tolist()
        assert len(v2) == 2 and len(set(v2)) == 2  # K distinct when >= K
        assert set(v2) <= {0, 1, 3, 4}
        for i in v2:
            counts[i] = counts.get(i, 0) + 1
        v3 = views['v3']['gt_instances_ids'].tolist()
        assert len(set(v3)) == 2 and pair_rows(views['v1'], 2) == v3
        assert pair_rows(views['v1'], 1) == v2
    # boxes 1 and 4 have 2 of their 28 columns inside V2
    assert set(counts) == {0, 1, 3, 4}


def test_joint_visibility_switch_keeps_our_reading():
    t = fixed_crops(make(num_boxes=4, box_selection='joint', min_visible=0.5,
                         pad=False), (0, 0, 32, 72), (64, 0, 96, 72))
    np.random.seed(0)
    views = t(results(BOXES[[0, 2]]))['views']
    # no box is half inside both crops: the whole image is the box
    assert t.num_fallbacks == 1
    for name in NAMES:
        assert views[name]['gt_instances_ids'].tolist() == [-1]
        assert 'gt_instances_pairs' not in views[name]
    with pytest.raises(ValueError, match='box_selection'):
        make(box_selection='both')


def test_per_pair_crops_redrawn_while_a_pair_is_short():
    """Official least_common: redraw while a pair has < max(K // 2, 1)
    boxes, halving the bound after each miss."""
    draws = iter([((0, 0, 32, 72), (64, 48, 96, 72)),  # V3 sees nothing
                  ((0, 0, 32, 72), (64, 0, 96, 72))])
    t = make(num_boxes=4)
    t._draw_crops = lambda width, height: next(draws)
    np.random.seed(0)
    views = t(results(BOXES[[0, 2]]))['views']
    assert t.num_retries == 1 and t.num_fallbacks == 0
    assert views['v3']['gt_instances_ids'].tolist() == [1] * 4


def test_raw_view_is_the_unaugmented_image_with_its_geometry():
    """The end-to-end extra crops are cut from this view: the whole image
    resized, no boxes, packed without pixel augmentation."""
    pack = [dict(type='PackViewInputs')]
    jitter = [dict(type='ColorJitter', prob=1.0), dict(type='PackViewInputs')]
    pipe = Compose([
        dict(type='SoCoViews', box_source='none', v1_size=48, v2_size=32,
             v3_size=16, raw_view='raw', raw_size=96,
             interpolation='nearest'),
        dict(type='PackViews', pipelines=dict(v1=jitter, v2=jitter,
                                              v3=jitter, raw=pack)),
    ])
    res = results()
    del res['proposals']
    np.random.seed(0)
    out = pipe(res)
    raw = out['inputs']['raw'].numpy().transpose(1, 2, 0)  # (96, 96, 3)
    sample = out['data_samples']['raw']
    assert np.allclose(sample.metainfo['homography_matrix'],
                       np.diag([96 / W, 96 / H, 1]), atol=1e-6)
    assert len(sample.gt_instances) == 0
    # nearest resize of the image (OpenCV: source pixel floor(x * scale)),
    # untouched by any colour op
    ys = np.floor(np.arange(96) * H / 96).astype(int)
    xs = np.floor(np.arange(96) * W / 96).astype(int)
    assert np.array_equal(raw, res['img'][ys][:, xs])
    with pytest.raises(ValueError, match='raw_view'):
        make(raw_view='v2')
