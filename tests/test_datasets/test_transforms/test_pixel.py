# Copyright (c) mmselfdet contributors. All rights reserved.
import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params
from mmdet.registry import TRANSFORMS

import mmselfdet.datasets.transforms  # noqa: F401  (registers the transforms)
from mmselfdet.datasets.transforms import ColorJitter, GaussianBlur


def rand_img(seed: int, low: int = 0, high: int = 256, shape=(32, 48, 3)) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return rng.randint(low, high, size=shape).astype(np.uint8)


def run(transform, img: np.ndarray, seed: int) -> np.ndarray:
    np.random.seed(seed)
    out = transform(dict(img=img.copy()))['img']
    assert out.dtype == np.uint8 and out.shape == img.shape
    return out


# ----------------------------------------------------------------- ColorJitter
def test_color_jitter_prob_zero_is_identity() -> None:
    transform = ColorJitter(prob=0.0)
    for seed in range(5):
        img = rand_img(seed)
        np.testing.assert_array_equal(run(transform, img, seed), img)


def test_color_jitter_default_changes_image_and_keeps_dtype() -> None:
    transform = ColorJitter()
    changed = 0
    for seed in range(20):
        img = rand_img(seed)
        out = run(transform, img, seed)
        changed += not np.array_equal(out, img)
    # prob=0.8: most, but not all, images are jittered.
    assert 10 <= changed < 20


def test_color_jitter_brightness_range() -> None:
    transform = ColorJitter(brightness=0.4, contrast=0, saturation=0, hue=0, prob=1.0)
    ratios = []
    for seed in range(60):
        img = rand_img(seed, 20, 150)  # no clipping at 1.4x
        out = run(transform, img, seed)
        ratio = out.astype(np.float64).mean() / img.astype(np.float64).mean()
        ratios.append(ratio)
        # One factor for every pixel: out == round(img * factor).
        np.testing.assert_allclose(out, np.rint(img * ratio), atol=1.01)
    ratios = np.array(ratios)
    assert ratios.min() >= 0.6 - 1e-2 and ratios.max() <= 1.4 + 1e-2
    assert ratios.min() < 0.75 and ratios.max() > 1.25  # the range is used


def test_color_jitter_keeps_gray_gray() -> None:
    gray = rand_img(0, shape=(24, 24, 1)).repeat(3, axis=2)
    transform = ColorJitter(brightness=0.4, contrast=0.4, saturation=0, hue=0, prob=1.0)
    for seed in range(10):
        out = run(transform, gray, seed)
        np.testing.assert_array_equal(out[..., 0], out[..., 1])
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
    # Saturation and hue cannot colour a gray image either (up to rounding).
    for seed in range(10):
        out = run(ColorJitter(prob=1.0), gray, seed).astype(int)
        assert np.abs(out - out[..., :1]).max() <= 1


def test_color_jitter_saturation_zero_gives_luma() -> None:
    img = rand_img(1)
    transform = ColorJitter(
        brightness=0, contrast=0, saturation=(0.0, 0.0), hue=0, prob=1.0
    )
    out = run(transform, img, 0).astype(np.float64)
    luma = img.astype(np.float64) @ np.array([0.114, 0.587, 0.299])
    np.testing.assert_allclose(out, np.repeat(luma[..., None], 3, axis=2), atol=0.51)


def test_color_jitter_contrast_zero_gives_mean_gray() -> None:
    img = rand_img(2)
    transform = ColorJitter(
        brightness=0, contrast=(0.0, 0.0), saturation=0, hue=0, prob=1.0
    )
    out = run(transform, img, 0)
    luma_mean = (img.astype(np.float64) @ np.array([0.114, 0.587, 0.299])).mean()
    assert np.unique(out).tolist() == [int(np.rint(luma_mean))]


def test_color_jitter_hue_rotation() -> None:
    # BGR pure red, rotated by a third of a turn, becomes pure green.
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255
    transform = ColorJitter(
        brightness=0, contrast=0, saturation=0, hue=(1 / 3, 1 / 3), prob=1.0
    )
    out = run(transform, img, 0)
    np.testing.assert_array_equal(out[0, 0], [0, 255, 0])
    # A half turn maps blue to yellow.
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255
    transform = ColorJitter(
        brightness=0, contrast=0, saturation=0, hue=(0.5, 0.5), prob=1.0
    )
    np.testing.assert_array_equal(run(transform, img, 0)[0, 0], [0, 255, 255])


def test_color_jitter_random_order_and_reproducible() -> None:
    transform = ColorJitter(prob=1.0)
    orders = set()
    for seed in range(30):
        np.random.seed(seed)
        orders.add(tuple(op for op, _ in transform._sample_params()))
    assert len(orders) > 10
    img = rand_img(3)
    np.testing.assert_array_equal(run(transform, img, 7), run(transform, img, 7))
    assert not np.array_equal(run(transform, img, 7), run(transform, img, 8))
    with cache_random_params(transform):
        a = transform(dict(img=img.copy()))['img']
        b = transform(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(a, b)


def test_color_jitter_strength_above_one_clips_range_at_zero() -> None:
    # torchvision semantics: [max(0, 1 - b), 1 + b], so b > 1 is allowed.
    transform = ColorJitter(brightness=1.5, contrast=0, saturation=0, hue=0, prob=1)
    img = rand_img(6, 20, 100)
    ratios = []
    for seed in range(40):
        out = run(transform, img, seed)
        ratios.append(out.astype(float).mean() / img.astype(float).mean())
    assert min(ratios) < 0.3 and max(ratios) > 2.0


def test_color_jitter_invalid_args() -> None:
    with pytest.raises(ValueError):
        ColorJitter(brightness=-0.1)
    with pytest.raises(ValueError):
        ColorJitter(hue=0.6)
    with pytest.raises(ValueError):
        ColorJitter(prob=1.5)
    with pytest.raises(TypeError):
        ColorJitter(contrast='strong')


# ---------------------------------------------------------------- GaussianBlur
def test_gaussian_blur_reduces_variance() -> None:
    strictly = 0
    for seed in range(10):
        img = rand_img(seed)
        out = run(GaussianBlur(prob=1.0), img, seed)
        # sigma near 0.1 is (almost) the identity on uint8, never a sharpening.
        assert out.astype(np.float64).var() <= img.astype(np.float64).var()
        strictly += out.astype(np.float64).var() < img.astype(np.float64).var()
        out = run(GaussianBlur(sigma_min=0.5, prob=1.0), img, seed)
        assert out.astype(np.float64).var() < 0.9 * img.astype(np.float64).var()
    assert strictly >= 7


def test_gaussian_blur_strength_follows_sigma() -> None:
    img = rand_img(4)
    weak = run(GaussianBlur(sigma_min=0.3, sigma_max=0.3, prob=1.0), img, 0)
    strong = run(GaussianBlur(sigma_min=2.0, sigma_max=2.0, prob=1.0), img, 0)
    assert strong.astype(float).var() < 0.5 * weak.astype(float).var()


def test_gaussian_blur_prob_zero_is_identity() -> None:
    transform = GaussianBlur(prob=0.0)
    for seed in range(5):
        img = rand_img(seed)
        np.testing.assert_array_equal(run(transform, img, seed), img)


def test_gaussian_blur_keeps_single_channel_axis() -> None:
    img = rand_img(5, shape=(20, 20, 1))
    out = run(GaussianBlur(prob=1.0), img, 0)
    assert out.shape == (20, 20, 1)


def test_gaussian_blur_invalid_args() -> None:
    with pytest.raises(ValueError):
        GaussianBlur(sigma_min=0.0)
    with pytest.raises(ValueError):
        GaussianBlur(sigma_min=2.0, sigma_max=1.0)
    with pytest.raises(ValueError):
        GaussianBlur(prob=-0.1)


# ------------------------------------------------------------ repr / registry
def test_repr_and_registry() -> None:
    jitter = TRANSFORMS.build(
        dict(type='ColorJitter', brightness=0.3, contrast=0.2, saturation=0.1,
             hue=0.05, prob=0.7)
    )
    assert isinstance(jitter, ColorJitter)
    assert repr(jitter) == (
        'ColorJitter(brightness=0.3, contrast=0.2, saturation=0.1, hue=0.05, '
        'prob=0.7)'
    )
    blur = TRANSFORMS.build(
        dict(type='GaussianBlur', sigma_min=0.2, sigma_max=1.5, prob=0.4)
    )
    assert isinstance(blur, GaussianBlur)
    assert repr(blur) == 'GaussianBlur(sigma_min=0.2, sigma_max=1.5, prob=0.4)'


# -------------------------------------------------------- RandomCutoutInBoxes
CUT_BOX = (10.0, 12.0, 50.0, 42.0)  # 40 x 30 px
CUT_FILL = (104, 116, 124)  # the ImageNet mean, BGR: 0 after normalising


def cut_mask(seed: int, **kwargs) -> np.ndarray:
    """(H, W) bool: the pixels the cutout filled (the image is all 0)."""
    from mmselfdet.datasets.transforms.pixel import RandomCutoutInBoxes
    t = RandomCutoutInBoxes(**kwargs)
    np.random.seed(seed)
    res = t(dict(img=np.zeros((64, 64, 3), np.uint8),
                 gt_bboxes=np.array([CUT_BOX], np.float32)))
    changed = (res['img'] != 0).any(-1)
    assert (res['img'][changed] == CUT_FILL).all()
    return changed


def test_cutout_in_boxes_probability_ratio_and_placement() -> None:
    """SoCo's V2 / V3 cutout (official RandomCutoutInBbox, cutout_prob 0.5,
    ratio 0.1-0.3 in the FPN scripts): per box with probability 0.5 a square
    of 10-30 % of the box area is filled with the mean colour, inside the
    box."""
    area = 40 * 30
    cut, ratios = 0, []
    for seed in range(400):
        mask = cut_mask(seed)
        if not mask.any():
            continue
        cut += 1
        ys, xs = np.nonzero(mask)
        # inside the box, a filled square
        assert xs.min() >= 10 and xs.max() < 50
        assert ys.min() >= 12 and ys.max() < 42
        side_x, side_y = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        assert side_x == side_y and mask.sum() == side_x * side_y
        ratios.append(mask.sum() / area)
    # binomial(400, 0.5): sd 0.025, the bounds are 4 sd away
    assert 0.4 < cut / 400 < 0.6, cut
    side_lo, side_hi = round((0.1 * area)**0.5), round((0.3 * area)**0.5)
    assert side_lo**2 / area <= min(ratios) < 0.13
    assert 0.27 < max(ratios) <= side_hi**2 / area


def test_cutout_prob_and_official_placement_switch() -> None:
    assert not any(cut_mask(s, prob=0.0).any() for s in range(10))
    assert all(cut_mask(s, prob=1.0).any() for s in range(10))
    # official placement: the square is centred on a random point of the
    # box and may leave it (clipped to the image only)
    outside = 0
    for seed in range(60):
        ys, xs = np.nonzero(cut_mask(seed, prob=1.0, placement='center'))
        outside += xs.min() < 10 or xs.max() >= 50 or ys.min() < 12 or \
            ys.max() >= 42
    assert outside > 0
    with pytest.raises(ValueError, match='placement'):
        cut_mask(0, placement='edge')
    with pytest.raises(ValueError, match='ratio'):
        cut_mask(0, ratio=(0.5, 0.2))
