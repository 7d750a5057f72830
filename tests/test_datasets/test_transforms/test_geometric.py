# Copyright (c) mmselfdet contributors. All rights reserved.
"""transforms/geometric.py: RandomResizedCropWithBoxes / crop_resize_view."""
import random
from typing import Dict, Optional, Tuple

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmcv.transforms.utils import cache_random_params
from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import DefaultScope

import mmselfdet.datasets.transforms  # noqa: F401  (registers the transforms)
from mmselfdet.datasets.transforms import RandomResizedCropWithBoxes

COLOUR = np.array([0, 255, 0], dtype=np.uint8)  # background never has a 0


def make_scene(
    seed: int, height: int = 72, width: int = 96
) -> Tuple[np.ndarray, np.ndarray]:
    """Noise image in [30, 200] with one filled rectangle of ``COLOUR``."""
    rng = np.random.RandomState(seed)
    img = rng.randint(30, 201, size=(height, width, 3)).astype(np.uint8)
    x1 = int(rng.randint(5, width // 2))
    y1 = int(rng.randint(5, height // 2))
    x2 = int(rng.randint(x1 + 10, width - 3))
    y2 = int(rng.randint(y1 + 10, height - 3))
    img[y1:y2, x1:x2] = COLOUR
    return img, np.array([[x1, y1, x2, y2]], dtype=np.float32)


def make_results(
    img: np.ndarray,
    boxes: Optional[np.ndarray] = None,
    labels: Optional[np.ndarray] = None,
) -> Dict:
    results: Dict = dict(
        img=img.copy(),
        img_shape=img.shape[:2],
        ori_shape=img.shape[:2],
        img_id=0,
        img_path='none.jpg',
    )
    if boxes is not None:
        n = len(boxes)
        results['gt_bboxes'] = HorizontalBoxes(boxes.copy())
        results['gt_bboxes_labels'] = (
            np.arange(n, dtype=np.int64) if labels is None else labels.copy()
        )
        results['gt_ignore_flags'] = np.zeros(n, dtype=bool)
    return results


def map_boxes(matrix: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Map (x1, y1, x2, y2) boxes by a homography; returns sorted corners."""
    corners = np.stack(
        [
            np.stack([boxes[:, 0], boxes[:, 1], np.ones(len(boxes))], axis=1),
            np.stack([boxes[:, 2], boxes[:, 3], np.ones(len(boxes))], axis=1),
        ],
        axis=1,
    )  # (n, 2, 3)
    mapped = corners @ matrix.astype(np.float64).T
    mapped = mapped[..., :2] / mapped[..., 2:]
    lo = mapped.min(axis=1)
    hi = mapped.max(axis=1)
    return np.concatenate([lo, hi], axis=1)


def clip_boxes(boxes: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    out = boxes.copy()
    out[:, 0::2] = out[:, 0::2].clip(0, shape[1])
    out[:, 1::2] = out[:, 1::2].clip(0, shape[0])
    return out


def colour_match(pixels: np.ndarray, tol: int) -> np.ndarray:
    diff = np.abs(pixels.astype(np.int32) - COLOUR.astype(np.int32))
    return diff.max(axis=-1) <= tol


def check_pixels(view: np.ndarray, box: np.ndarray, matrix: np.ndarray) -> bool:
    """Pixels inside the box are COLOUR, pixels well outside are not.

    Returns whether the interior was non-empty (i.e. the check had teeth).
    """
    h, w = view.shape[:2]
    scale_x = abs(float(matrix[0, 0]))
    scale_y = abs(float(matrix[1, 1]))
    # Bilinear mixes source pixels within one source pixel of the sample.
    margin_x = 0.5 * scale_x + 0.51
    margin_y = 0.5 * scale_y + 0.51
    cx = np.arange(w) + 0.5
    cy = np.arange(h) + 0.5
    x1, y1, x2, y2 = box
    in_x = (cx >= x1 + margin_x) & (cx <= x2 - margin_x)
    in_y = (cy >= y1 + margin_y) & (cy <= y2 - margin_y)
    inside = in_y[:, None] & in_x[None, :]
    far_x = (cx < x1 - margin_x) | (cx > x2 + margin_x)
    far_y = (cy < y1 - margin_y) | (cy > y2 + margin_y)
    outside = far_y[:, None] | far_x[None, :]
    match = colour_match(view, tol=3)
    if inside.any():
        assert match[inside].mean() >= 0.99, match[inside].mean()
    # Background is in [30, 200] on every channel: never near COLOUR.
    assert not colour_match(view[outside], tol=10).any()
    return bool(inside.any())


def test_boxes_pixels_and_homography() -> None:
    transform = RandomResizedCropWithBoxes(scale=(64, 48))
    survived = checked = 0
    for seed in range(40):
        img, boxes = make_scene(seed)
        results = make_results(img, boxes)
        np.random.seed(seed)
        out = transform(results)
        view = out['img']
        assert view.shape == (48, 64, 3) and view.dtype == np.uint8
        assert out['img_shape'] == (48, 64)
        matrix = out['homography_matrix']
        assert matrix.shape == (3, 3) and matrix.dtype == np.float32
        out_boxes = out['gt_bboxes'].numpy()
        expected = clip_boxes(map_boxes(matrix, boxes), (48, 64))
        visible = (expected[:, 2] - expected[:, 0] >= 1) & (
            expected[:, 3] - expected[:, 1] >= 1
        )
        assert len(out_boxes) == int(visible.sum())
        assert len(out['gt_bboxes_labels']) == len(out_boxes)
        assert len(out['gt_ignore_flags']) == len(out_boxes)
        if len(out_boxes):
            survived += 1
            np.testing.assert_allclose(out_boxes, expected[visible], atol=1e-3)
            checked += check_pixels(view, out_boxes[0], matrix)
        else:
            assert not colour_match(view, tol=10).any()
    assert survived >= 20 and checked >= 15


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_homography_composes_with_flip(direction: str) -> None:
    crop = RandomResizedCropWithBoxes(scale=(56, 40))
    flip = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0, direction=direction))
    survived = 0
    for seed in range(15):
        img, boxes = make_scene(seed)
        np.random.seed(seed)
        out = flip(crop(make_results(img, boxes)))
        assert out['flip'] and out['flip_direction'] == direction
        matrix = out['homography_matrix']
        out_boxes = out['gt_bboxes'].numpy()
        if not len(out_boxes):
            continue
        survived += 1
        expected = clip_boxes(map_boxes(matrix, boxes), (40, 56))
        np.testing.assert_allclose(out_boxes, expected, atol=1e-3)
        check_pixels(out['img'], out_boxes[0], matrix)
    assert survived >= 5


def test_homography_maps_pixels() -> None:
    """Points inside the rectangle land on COLOUR pixels of the view."""
    transform = RandomResizedCropWithBoxes(scale=64, crop_scale=(0.3, 1.0))
    rng = np.random.RandomState(0)
    hits = 0
    for seed in range(20):
        img, boxes = make_scene(seed)
        np.random.seed(seed)
        out = transform(make_results(img))
        matrix = out['homography_matrix'].astype(np.float64)
        x1, y1, x2, y2 = boxes[0]
        pts = np.stack(
            [rng.uniform(x1 + 2, x2 - 2, 50), rng.uniform(y1 + 2, y2 - 2, 50)], 1
        )
        mapped = np.concatenate([pts, np.ones((50, 1))], 1) @ matrix.T
        u, v = mapped[:, 0], mapped[:, 1]
        ok = (u >= 0) & (u < 64) & (v >= 0) & (v < 64)
        if ok.any():
            pix = out['img'][v[ok].astype(int), u[ok].astype(int)]
            assert colour_match(pix, tol=3).all()
            hits += 1
    assert hits >= 10


@pytest.mark.parametrize(
    'img_hw,scale,out_hw',
    [
        ((20, 30), 64, (64, 64)),
        ((20, 30), (80, 50), (50, 80)),
        ((96, 40), (24, 40), (40, 24)),
    ],
)
def test_output_shape(img_hw, scale, out_hw) -> None:
    transform = RandomResizedCropWithBoxes(scale=scale)
    img = np.random.RandomState(1).randint(0, 256, (*img_hw, 3)).astype(np.uint8)
    for seed in range(5):
        np.random.seed(seed)
        out = transform(make_results(img, np.array([[2, 2, 18, 15]], np.float32)))
        assert out['img'].shape == (*out_hw, 3)
        assert out['img_shape'] == out_hw
        assert out['gt_bboxes'].numpy().shape[1] == 4


def test_unlabeled_input() -> None:
    img, _ = make_scene(3)
    results = dict(img=img)
    np.random.seed(0)
    out = RandomResizedCropWithBoxes(scale=32)(results)
    assert out['img'].shape == (32, 32, 3)
    assert out['homography_matrix'].shape == (3, 3)
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks'):
        assert key not in out


def test_empty_boxes() -> None:
    img, _ = make_scene(4)
    results = make_results(img, np.zeros((0, 4), np.float32))
    results['gt_masks'] = BitmapMasks(np.zeros((0, *img.shape[:2]), np.uint8), 72, 96)
    np.random.seed(0)
    out = RandomResizedCropWithBoxes(scale=32)(results)
    assert out['gt_bboxes'].numpy().shape == (0, 4)
    assert out['gt_bboxes_labels'].shape == (0,)
    assert out['gt_ignore_flags'].shape == (0,)
    assert len(out['gt_masks']) == 0
    assert (out['gt_masks'].height, out['gt_masks'].width) == (32, 32)


def test_numpy_boxes_round_trip() -> None:
    img, boxes = make_scene(5)
    results = make_results(img)
    results['gt_bboxes'] = boxes.copy()
    np.random.seed(0)
    out = RandomResizedCropWithBoxes(scale=32, crop_scale=(1.0, 1.0))(results)
    assert isinstance(out['gt_bboxes'], np.ndarray)
    expected = clip_boxes(map_boxes(out['homography_matrix'], boxes), (32, 32))
    np.testing.assert_allclose(out['gt_bboxes'], expected, atol=1e-3)


def test_dropped_boxes_keep_labels_flags_masks_in_sync() -> None:
    height, width = 64, 64
    img = np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)
    boxes = np.array(
        [[0, 0, 64, 64], [1, 1, 6, 6], [58, 2, 63, 7], [30, 56, 36, 62]],
        dtype=np.float32,
    )
    masks = np.zeros((4, height, width), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        masks[i, y1:y2, x1:x2] = 1
    transform = RandomResizedCropWithBoxes(
        scale=32, crop_scale=(0.25, 0.25), ratio=(1.0, 1.0)
    )
    n_kept = set()
    for seed in range(30):
        results = make_results(img, boxes, labels=np.array([10, 11, 12, 13]))
        results['gt_ignore_flags'] = np.array([False, True, False, True])
        results['gt_masks'] = BitmapMasks(masks.copy(), height, width)
        np.random.seed(seed)
        out = transform(results)
        out_boxes = out['gt_bboxes'].numpy()
        labels = out['gt_bboxes_labels']
        n = len(out_boxes)
        n_kept.add(n)
        assert len(labels) == len(out['gt_ignore_flags']) == len(out['gt_masks']) == n
        assert labels[0] == 10  # the full-image box always survives
        matrix = out['homography_matrix']
        for j, label in enumerate(labels):
            src = boxes[label - 10][None]
            np.testing.assert_allclose(
                out_boxes[j : j + 1],
                clip_boxes(map_boxes(matrix, src), (32, 32)),
                atol=1e-3,
            )
            assert out['gt_ignore_flags'][j] == bool(label % 2)
            # The mask follows its own box, not a neighbour's.
            ys, xs = np.nonzero(out['gt_masks'].masks[j])
            assert len(xs) > 0
            mask_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            np.testing.assert_allclose(mask_box, out_boxes[j], atol=1.5)
    assert 1 in n_kept and max(n_kept) >= 2  # boxes were dropped and kept


def test_min_box_size() -> None:
    img = np.zeros((96, 96, 3), np.uint8)
    boxes = np.array([[0, 0, 96, 96], [40, 40, 44, 44]], np.float32)  # 4 px box
    kwargs = dict(scale=16, crop_scale=(1.0, 1.0), ratio=(1.0, 1.0))
    # Full-image crop, 96 -> 16: the small box becomes 4 / 6 = 0.67 px wide.
    out = RandomResizedCropWithBoxes(**kwargs)(make_results(img, boxes))
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [0])
    out = RandomResizedCropWithBoxes(min_box_size=0.5, **kwargs)(
        make_results(img, boxes)
    )
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [0, 1])
    np.testing.assert_allclose(
        out['gt_bboxes'].numpy()[1], np.array([40, 40, 44, 44]) / 6, atol=1e-4
    )


def test_clip_object_border_false() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[0, 0, 64, 64], [60, 60, 64, 64]], np.float32)
    transform = RandomResizedCropWithBoxes(
        scale=32, crop_scale=(0.25, 0.25), ratio=(1.0, 1.0), max_attempts=0
    )
    # max_attempts=0 on a square image: central crop of the whole image.
    out = transform(make_results(img, boxes))
    np.testing.assert_allclose(out['gt_bboxes'].numpy()[0], [0, 0, 32, 32])
    transform = RandomResizedCropWithBoxes(
        scale=32, crop_scale=(0.25, 0.25), ratio=(1.0, 1.0), clip_object_border=False
    )
    seen_unclipped = False
    for seed in range(10):
        np.random.seed(seed)
        out = transform(make_results(img, boxes))
        matrix = out['homography_matrix']
        out_boxes = out['gt_bboxes'].numpy()
        # The full-image box is kept, unclipped, exactly where H sends it.
        np.testing.assert_allclose(out_boxes[0], map_boxes(matrix, boxes[:1])[0])
        seen_unclipped |= bool((out_boxes[0] < 0).any() or (out_boxes[0] > 32).any())
        corner = map_boxes(matrix, boxes[1:])[0]
        corner_visible = corner[0] < 32 and corner[1] < 32
        assert len(out_boxes) == 1 + int(corner_visible)
    assert seen_unclipped


def test_central_crop_fallback() -> None:
    img = np.zeros((20, 80, 3), np.uint8)  # w / h = 4 > 4 / 3
    out = RandomResizedCropWithBoxes(scale=64, max_attempts=0)(dict(img=img))
    # Full height, width round(20 * 4 / 3) = 27, centred at x0 = (80 - 27) // 2.
    expected = np.array(
        [[64 / 27, 0, -64 / 27 * 26], [0, 64 / 20, 0], [0, 0, 1]], np.float32
    )
    np.testing.assert_allclose(out['homography_matrix'], expected, rtol=1e-6)
    # An impossible aspect range always falls back as well, even with attempts.
    img = np.zeros((40, 40, 3), np.uint8)
    np.random.seed(0)
    out = RandomResizedCropWithBoxes(
        scale=(32, 8), crop_scale=(1.0, 1.0), ratio=(4.0, 4.0)
    )(dict(img=img))
    expected = np.array([[32 / 40, 0, 0], [0, 8 / 10, -8 / 10 * 15], [0, 0, 1]])
    np.testing.assert_allclose(out['homography_matrix'], expected, rtol=1e-6)


def test_composes_with_existing_homography() -> None:
    img, boxes = make_scene(6)
    previous = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) * 1.0
    previous[0, 2] = 5.0
    results = make_results(img, boxes)
    results['homography_matrix'] = previous.copy()
    np.random.seed(3)
    out = RandomResizedCropWithBoxes(scale=32)(results)
    np.random.seed(3)
    alone = RandomResizedCropWithBoxes(scale=32)(make_results(img, boxes))
    np.testing.assert_allclose(
        out['homography_matrix'], alone['homography_matrix'] @ previous, rtol=1e-6
    )


def test_seed_reproducibility_and_cache() -> None:
    img, boxes = make_scene(7)
    transform = RandomResizedCropWithBoxes(scale=40)
    matrices = []
    for seed in (11, 11, 12):
        np.random.seed(seed)
        out = transform(make_results(img, boxes))
        matrices.append((out['homography_matrix'], out['img']))
    np.testing.assert_array_equal(matrices[0][0], matrices[1][0])
    np.testing.assert_array_equal(matrices[0][1], matrices[1][1])
    assert not np.array_equal(matrices[0][0], matrices[2][0])
    # cache_random_params: the same crop for every call inside the context.
    with cache_random_params(transform):
        first = transform(make_results(img, boxes))['homography_matrix']
        second = transform(make_results(img, boxes))['homography_matrix']
    np.testing.assert_array_equal(first, second)


def test_invalid_args() -> None:
    with pytest.raises(ValueError):
        RandomResizedCropWithBoxes(scale=0)
    with pytest.raises(ValueError):
        RandomResizedCropWithBoxes(scale=32, crop_scale=(0.5, 0.1))
    with pytest.raises(ValueError):
        RandomResizedCropWithBoxes(scale=32, ratio=(2.0, 1.0))
    with pytest.raises(ValueError):
        RandomResizedCropWithBoxes(scale=32, interpolation='magic')
    with pytest.raises(ValueError):
        RandomResizedCropWithBoxes(scale=32, max_attempts=-1)


def test_repr_and_registry() -> None:
    transform = TRANSFORMS.build(
        dict(
            type='RandomResizedCropWithBoxes',
            scale=(32, 24),
            crop_scale=(0.2, 1.0),
            interpolation='bicubic',
            min_box_size=2.0,
        )
    )
    assert isinstance(transform, RandomResizedCropWithBoxes)
    text = repr(transform)
    for part in (
        'RandomResizedCropWithBoxes(',
        'scale=(32, 24)',
        'crop_scale=(0.2, 1.0)',
        'ratio=(0.75, 1.33',
        'max_attempts=10',
        "interpolation='bicubic'",
        'clip_object_border=True',
        'min_box_size=2.0',
    ):
        assert part in text


def _pipeline_cfg() -> list:
    return [
        dict(type='RandomResizedCropWithBoxes', scale=(48, 40), crop_scale=(0.2, 1.0)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='ColorJitter', prob=0.8),
        dict(
            type='RandomGrayscale',
            prob=0.2,
            keep_channels=True,
            channel_weights=(0.114, 0.587, 0.299),
        ),
        dict(type='GaussianBlur', prob=0.5),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'flip', 'flip_direction', 'homography_matrix'),
        ),
    ]


def test_moco_pipeline() -> None:
    # PackDetInputs' default meta_keys do not include homography_matrix.
    assert 'homography_matrix' not in TRANSFORMS.build(
        dict(type='PackDetInputs')
    ).meta_keys
    pipeline = Compose([TRANSFORMS.build(cfg) for cfg in _pipeline_cfg()])
    n_boxes = 0
    for seed in range(12):
        np.random.seed(seed)
        random.seed(seed)  # mmcv's RandomGrayscale uses the `random` module
        img, boxes = make_scene(seed)
        packed = pipeline(make_results(img, boxes))
        inputs = packed['inputs']
        assert isinstance(inputs, torch.Tensor)
        assert inputs.shape == (3, 40, 48) and inputs.dtype == torch.uint8
        sample = packed['data_samples']
        assert isinstance(sample, DetDataSample)
        matrix = sample.metainfo['homography_matrix']
        assert matrix.shape == (3, 3)
        assert sample.metainfo['img_shape'] == (40, 48)
        out_boxes = sample.gt_instances.bboxes.numpy()
        if len(out_boxes):
            n_boxes += 1
            expected = clip_boxes(map_boxes(matrix, boxes), (40, 48))
            np.testing.assert_allclose(out_boxes, expected, atol=1e-3)
    assert n_boxes >= 5


def test_moco_pipeline_from_config_in_mmdet_scope() -> None:
    with DefaultScope.overwrite_default_scope('mmdet'):
        pipeline = Compose(_pipeline_cfg())
    np.random.seed(0)
    random.seed(0)
    packed = pipeline(dict(img=make_scene(0)[0]))
    assert packed['inputs'].shape == (3, 40, 48)
    assert 'homography_matrix' in packed['data_samples'].metainfo
