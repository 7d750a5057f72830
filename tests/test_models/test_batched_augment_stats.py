# Copyright (c) mmselfdet contributors. All rights reserved.
"""Statistical equivalence of the batched view augmentation and the CPU
pipeline (issue 18): for every op, the per-parameter distributions (apply
rates, op order, factor / sigma / threshold histograms by a two-sample
Kolmogorov-Smirnov test) and the per-channel moments of the outputs over
many small images agree; planted bugs (a wrong hue range, swapped
grayscale weights) are detected.

Tolerances: every check is a two-sample test at level ``ALPHA / K`` with
``K`` the number of checks of the file (Bonferroni), so a correct
implementation fails with probability below ``ALPHA`` = 1e-3 whatever the
seeds; the seeds are fixed, so the outcome is deterministic.
"""
import math
from typing import List

import numpy as np
import pytest
import torch
from mmcv.transforms import RandomGrayscale
from mmdet.datasets.transforms import RandomFlip, Solarize

from mmselfdet.datasets.transforms.pixel import ColorJitter, GaussianBlur
from mmselfdet.models.utils.batched_augment import BatchedViewAugment

ALPHA, K = 1e-3, 120  # family-wise level; upper bound on checks per file
LEVEL = ALPHA / K
Z = 4.57  # two-sided normal quantile of 1 - LEVEL / 2 (LEVEL ~ 8.3e-6)
M, S = 1500, 12  # images for the output moments, side
P = 20000  # parameter draws per op
GRAY = dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
            channel_weights=(0.114, 0.587, 0.299))
CASES = {
    'jitter': [dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                    saturation=0.4, hue=0.1, prob=0.8)],
    'gray': [GRAY],
    'blur': [dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0,
                  prob=0.5)],
    'solarize': [dict(type='Solarize', prob=0.2, min_mag=100.0,
                      max_mag=160.0)],
    'flip': [dict(type='RandomFlip', prob=0.5)],
}
CPU = dict(ColorJitter=ColorJitter, RandomGrayscale=RandomGrayscale,
           GaussianBlur=GaussianBlur, Solarize=Solarize,
           RandomFlip=RandomFlip)


def ks_ok(a, b) -> bool:
    """Two-sample KS test at LEVEL (asymptotic critical value)."""
    a, b = np.sort(np.asarray(a)), np.sort(np.asarray(b))
    grid = np.concatenate([a, b])
    d = np.abs(np.searchsorted(a, grid, 'right') / len(a) -
               np.searchsorted(b, grid, 'right') / len(b)).max()
    n, m = len(a), len(b)
    return d <= math.sqrt(-math.log(LEVEL / 2) / 2 * (n + m) / (n * m))


def rate_ok(x, y) -> bool:
    """Two-proportion z-test (pooled variance)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    p = (x.sum() + y.sum()) / (len(x) + len(y))
    se = math.sqrt(max(p * (1 - p), 1e-12) * (1 / len(x) + 1 / len(y)))
    return abs(x.mean() - y.mean()) <= Z * se


def mean_ok(x, y) -> bool:
    """Welch z-test of equal means."""
    se = math.sqrt(np.var(x) / len(x) + np.var(y) / len(y))
    return abs(np.mean(x) - np.mean(y)) <= Z * max(se, 1e-9)


def cpu_params(kind: str, cfg: dict, n: int) -> dict:
    """The CPU transform's own draws, through its sampling methods."""
    t = CPU[cfg['type']](**{k: v for k, v in cfg.items() if k != 'type'})
    if kind == 'jitter':
        on, order, fac = [], [], []
        for _ in range(n):
            p = t._sample_params()
            on.append(p is not None)
            if p:
                order.append([op for op, _ in p])
                fac.append([f for _, f in sorted(p)])
        return dict(on=on, order=np.array(order), factors=np.array(fac))
    if kind == 'gray':
        return dict(on=[t._random_prob() < t.prob for _ in range(n)])
    if kind == 'blur':
        s = [t._sample_sigma() for _ in range(n)]
        return dict(on=[v is not None for v in s],
                    sigma=[v for v in s if v is not None])
    if kind == 'solarize':
        return dict(on=[not t._random_disable() for _ in range(n)],
                    threshold=[t._get_mag() for _ in range(n)])
    return dict(on=[t._choose_direction() == 'horizontal' for _ in range(n)])


def gpu_params(kind: str, aug: BatchedViewAugment, n: int) -> dict:
    p = aug.draw(n, torch.Generator().manual_seed(11))[0]
    if kind == 'jitter':
        on = p['on'].numpy()
        return dict(on=on, order=p['order'].numpy()[on],
                    factors=p['factors'].numpy()[on])
    if kind == 'blur':
        on = (p['sigma'] > 0).numpy()
        return dict(on=on, sigma=p['sigma'].numpy()[on])
    key = dict(gray='gray', flip='flip', solarize='on')[kind]
    out = dict(on=p[key].numpy())
    if kind == 'solarize':
        out['threshold'] = p['threshold'].numpy()
    return out


def param_failures(kind: str, cpu: dict, gpu: dict) -> List[str]:
    bad = [] if rate_ok(cpu['on'], gpu['on']) else ['apply rate']
    if kind == 'jitter':
        for pos in range(4):  # op frequency at each position of the order
            for op in range(4):
                if not rate_ok(cpu['order'][:, pos] == op,
                               gpu['order'][:, pos] == op):
                    bad.append(f'order[{pos}]=={op}')
        for op, name in enumerate(('brightness', 'contrast', 'saturation',
                                   'hue')):
            if not ks_ok(cpu['factors'][:, op], gpu['factors'][:, op]):
                bad.append(f'{name} factor')
    for key in ('sigma', 'threshold'):
        if key in cpu and not ks_ok(cpu[key], gpu[key]):
            bad.append(key)
    return bad


def inputs(seed=0) -> np.ndarray:
    """(M, S, S, 3) uint8 BGR: a colour per image (reddish on average, so
    channel weights matter) plus noise and a horizontal ramp (so flips
    matter)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([0, 50, 100], [100, 200, 255], (M, 1, 1, 3))
    ramp = np.linspace(-40, 40, S)[None, None, :, None]
    noise = rng.normal(0, 20, (M, S, S, 3))
    return np.clip(base + noise + ramp, 0, 255).astype(np.uint8)


def moments(imgs: np.ndarray) -> np.ndarray:
    """(M, 9): per-channel mean, std and left-half minus right-half mean."""
    x = imgs.astype(np.float64)
    half = x[:, :, :S // 2].mean((1, 2)) - x[:, :, S // 2:].mean((1, 2))
    return np.concatenate([x.mean((1, 2)), x.std((1, 2)), half], 1)


def output_failures(ops: list, aug: BatchedViewAugment,
                    imgs: np.ndarray) -> List[str]:
    np.random.seed(3)
    ts = [CPU[c['type']](**{k: v for k, v in c.items() if k != 'type'})
          for c in ops]
    cpu = []
    for img in imgs:
        res = dict(img=img.copy(), img_shape=img.shape[:2])
        for t in ts:
            res = t(res)
        cpu.append(res['img'])
    batch = torch.from_numpy(imgs).permute(0, 3, 1, 2)  # (M, 3, S, S)
    out = aug(batch, None, torch.Generator().manual_seed(5))
    gpu = out.round().clamp(0, 255).permute(0, 2, 3, 1).numpy()
    a, b = moments(np.stack(cpu)), moments(gpu)
    return [f'moment {j}' for j in range(a.shape[1])
            if not mean_ok(a[:, j], b[:, j])]


@pytest.mark.parametrize('kind', sorted(CASES))
def test_parameters_and_outputs_match_the_cpu_pipeline(kind):
    ops = CASES[kind]
    aug = BatchedViewAugment(ops)
    np.random.seed(1)
    bad = param_failures(kind, cpu_params(kind, ops[0], P),
                         gpu_params(kind, aug, P))
    bad += output_failures(ops, aug, inputs())
    assert not bad, f'{kind}: batched op differs from the CPU transform in ' \
                    f'{bad}'


def test_whole_mocov2_view_matches():
    ops = CASES['jitter'] + [GRAY] + [dict(CASES['blur'][0], prob=0.5)] + \
        CASES['flip']
    assert not output_failures(ops, BatchedViewAugment(ops), inputs(1))


def test_planted_bugs_are_detected():
    """The checks can fail: a hue range of 0.2 instead of 0.1 is seen in the
    hue histogram; grayscale weights in the wrong channel order are seen in
    the output moments of always-gray views (at p = 0.2 the shift is below
    this sample size's resolution: 1500 images resolve mean shifts of
    about 4.6 standard errors)."""
    cfg = CASES['jitter'][0]
    np.random.seed(1)
    wrong = BatchedViewAugment([dict(cfg, hue=0.2)])
    bad = param_failures('jitter', cpu_params('jitter', cfg, P),
                         gpu_params('jitter', wrong, P))
    assert bad == ['hue factor']
    always = dict(GRAY, prob=1.0)
    assert not output_failures([always], BatchedViewAugment([always]),
                               inputs())
    swapped = BatchedViewAugment([always])
    swapped.ops[0].weights = swapped.ops[0].weights.flip(0)  # BGR as RGB
    assert output_failures([always], swapped, inputs())


def test_cutout_in_boxes_matches_the_cpu_transform():
    """SoCo's cutout in box: per image the cut fraction of each box and
    the cut pixels' colour agree with ``RandomCutoutInBoxes``."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmselfdet.datasets.transforms.pixel import RandomCutoutInBoxes
    cfg = dict(type='RandomCutoutInBoxes', prob=0.5, ratio=(0.1, 0.3))
    rng = np.random.default_rng(4)
    n, side = 1500, 16
    imgs = rng.integers(150, 256, (n, side, side, 3)).astype(np.uint8)
    lo = rng.uniform(0, 6, (n, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(6, 10, (n, 2))], 1)
    np.random.seed(6)
    cpu_t = RandomCutoutInBoxes(prob=0.5, ratio=(0.1, 0.3))
    cpu = np.stack([cpu_t(dict(img=img.copy(), gt_bboxes=b[None]))['img']
                    for img, b in zip(imgs, boxes)])
    samples = []
    for b in boxes:
        s = DetDataSample(metainfo=dict(img_shape=(side, side)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor(b[None], dtype=torch.float32))
        samples.append(s)
    aug = BatchedViewAugment([cfg])
    out = aug(torch.from_numpy(imgs).permute(0, 3, 1, 2), samples,
              torch.Generator().manual_seed(2))
    gpu = out.round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    fill = np.array([104, 116, 124], np.uint8)
    for name, res in (('cpu', cpu), ('gpu', gpu)):
        changed = (res != imgs).any(-1)
        assert (res[changed] == fill).all(), name  # the BGR fill
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    frac_cpu = (cpu != imgs).any(-1).sum((1, 2)) / area
    frac_gpu = (gpu != imgs).any(-1).sum((1, 2)) / area
    assert rate_ok(frac_cpu > 0, frac_gpu > 0)
    assert ks_ok(frac_cpu[frac_cpu > 0], frac_gpu[frac_gpu > 0])
    # the planted bug: a ratio range twice as large is seen
    wrong = BatchedViewAugment([dict(cfg, ratio=(0.2, 0.6))])
    out = wrong(torch.from_numpy(imgs).permute(0, 3, 1, 2), samples,
                torch.Generator().manual_seed(2))
    bad = (out.round().permute(0, 2, 3, 1).numpy() != imgs).any(-1)
    frac_bad = bad.sum((1, 2)) / area
    assert not ks_ok(frac_cpu[frac_cpu > 0], frac_bad[frac_bad > 0])
