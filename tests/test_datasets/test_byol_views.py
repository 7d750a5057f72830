# Copyright (c) mmselfdet contributors. All rights reserved.
"""BYOL's paper config has BYOL's asymmetric view augmentations (Grill et
al. 2020, appendix B, table 6); the MoCo v2 views are a named variant
(issue 16). The pipelines are built and their transforms inspected."""
import os.path as osp

import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config

from mmselfdet.registry import TRANSFORMS

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'byol')


def _views(name):
    """The two built view pipelines of a config's MultiBranch, as lists of
    transforms keyed by type name."""
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    branch = cfg.train_dataloader.dataset.pipeline[-1]
    assert branch['type'] == 'MultiBranch'
    views = []
    for key in ('view1', 'view2'):
        built = [TRANSFORMS.build(t) for t in branch[key]]
        views.append({type(t).__name__: t for t in built})
    return views


def _params(view):
    crop, jitter = view['RandomResizedCropWithBoxes'], view['ColorJitter']
    blur, gray = view['GaussianBlur'], view['RandomGrayscale']
    return dict(
        crop=(crop.scale, tuple(crop.crop_scale), tuple(crop.ratio)),
        jitter=(jitter.brightness, jitter.contrast, jitter.saturation,
                jitter.hue, jitter.prob),
        gray=gray.prob, blur=(blur.prob, blur.sigma_min, blur.sigma_max),
        solarize=(view['Solarize'].prob, view['Solarize'].min_mag,
                  view['Solarize'].max_mag) if 'Solarize' in view else None,
        flip=view['RandomFlip'].prob)


def test_byol_paper_views_are_asymmetric():
    v1, v2 = (_params(v) for v in _views('byol_r50_16xb256-coslr-200e_in1k.py'))
    for p in (v1, v2):
        assert p['crop'][0] in (224, (224, 224))
        assert p['crop'][1:] == ((0.08, 1.0), (3 / 4, 4 / 3))
        assert p['jitter'] == (0.4, 0.4, 0.2, 0.1, 0.8)
        assert p['gray'] == 0.2 and p['flip'] == 0.5
    assert v1['blur'] == (1.0, 0.1, 2.0) and v2['blur'] == (0.1, 0.1, 2.0)
    assert v1['solarize'] is None  # p = 0
    assert v2['solarize'] == (0.2, 128.0, 128.0)


def test_byol_solarize_inverts_pixels_from_128():
    """The view-2 solarization is BYOL's x -> 1 - x for x >= 0.5."""
    _, v2 = _views('byol_r50_16xb256-coslr-200e_in1k.py')
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, 2)
    t = TRANSFORMS.build(dict(type='Solarize', prob=1.0,
                              min_mag=v2['Solarize'].min_mag,
                              max_mag=v2['Solarize'].max_mag))
    out = t(dict(img=img.copy()))['img'].astype(int)
    x = img.astype(int)
    assert np.array_equal(out, np.where(x < 128, x, 255 - x))


def test_byol_views_run_on_an_image():
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'byol_r50_16xb256-coslr-200e_in1k.py'))
    branch = cfg.train_dataloader.dataset.pipeline[-1]
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    np.random.seed(0)
    out = Compose([branch])(dict(img=img, img_shape=(60, 80),
                                 ori_shape=(60, 80), img_path='x.png',
                                 img_id=0))
    for view in ('view1', 'view2'):
        assert out['inputs'][view].shape == (3, 224, 224)


def test_mocov2_views_variant():
    v1, v2 = (_params(v) for v in _views(
        'byol-mocov2views_r50_16xb256-coslr-200e_in1k.py'))
    assert v1 == v2
    assert v1['crop'][1] == (0.2, 1.0)
    assert v1['jitter'] == (0.4, 0.4, 0.4, 0.1, 0.8)
    assert v1['blur'] == (0.5, 0.1, 2.0) and v1['solarize'] is None
