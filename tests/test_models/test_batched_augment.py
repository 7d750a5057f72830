# Copyright (c) mmselfdet contributors. All rights reserved.
"""Batched view augmentation (issue 18): each batched op reproduces its CPU
transform pixel for pixel given the same parameters, a flip moves boxes
and homography exactly, draws are per sample / per step / per rank and a
resumed preprocessor continues with the same draws; the preprocessor runs
the ops of the configured views only. Distributions: see
``test_batched_augment_stats.py``."""
import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmselfdet.datasets.transforms.pixel import ColorJitter
from mmselfdet.models.utils.batched_augment import BatchedViewAugment
from mmselfdet.registry import MODELS

N, S = 6, 16
OPS = [dict(type='ColorJitter', prob=0.8),
       dict(type='RandomGrayscale', prob=0.2,
            channel_weights=(0.114, 0.587, 0.299)),
       dict(type='GaussianBlur', prob=0.5),
       dict(type='Solarize', prob=0.2, min_mag=128., max_mag=128.),
       dict(type='RandomFlip', prob=0.5)]


def images(n=N, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, S, S), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def hwc(img: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(img.permute(1, 2, 0).numpy())


def rgb01(x: torch.Tensor) -> torch.Tensor:
    return x.float().flip(1) / 255  # BGR uint8 -> RGB [0, 1]


def bgr255(y: torch.Tensor) -> np.ndarray:
    return (y.flip(0) * 255).round().permute(1, 2, 0).numpy()


def test_color_jitter_equals_cpu_transform_given_its_draw():
    x = images()
    aug = BatchedViewAugment([dict(type='ColorJitter', prob=1.0)])
    op = aug.ops[0]
    p = op.draw(N, torch.Generator().manual_seed(1))
    out = op.apply(rgb01(x), p)
    cpu = ColorJitter(prob=1.0)
    orders = set()
    for i in range(N):
        order, f = p['order'][i].tolist(), p['factors'][i].tolist()
        orders.add(tuple(order))
        cpu._sample_params = lambda: [(o, f[o]) for o in order]
        ref = cpu.transform(dict(img=hwc(x[i])))['img']
        np.testing.assert_allclose(bgr255(out[i]), ref, atol=0)
    assert len(orders) > 1  # the order is drawn per sample


def test_grayscale_solarize_blur_flip_equal_their_cpu_twins():
    x = images()
    aug = BatchedViewAugment([dict(OPS[1], prob=1.0),
                              dict(OPS[2], prob=1.0),
                              dict(type='Solarize', prob=1.0, min_mag=100.,
                                   max_mag=200.)])
    gray, blur, solar = aug.ops
    g = torch.Generator().manual_seed(2)
    img = rgb01(x)
    y = gray.apply(img, gray.draw(N, g))
    for i in range(N):  # mmcv: weighted sum, truncated
        w = np.array([0.114, 0.587, 0.299]) / 1.0
        ref = (hwc(x[i]) * w).sum(2).astype(np.uint8)
        np.testing.assert_array_equal(bgr255(y[i])[..., 0], ref)
    p = blur.draw(N, g)
    y = blur.apply(img, p)
    for i in range(N):  # OpenCV's kernel size; its 8-bit fixed point: <= 2
        s = float(p['sigma'][i])
        ref = cv2.GaussianBlur(hwc(x[i]), (0, 0), sigmaX=s, sigmaY=s)
        assert np.abs(bgr255(y[i]) - ref).max() <= 2
    p = solar.draw(N, g)
    y = solar.apply(img, p)
    for i in range(N):
        t = float(p['threshold'][i])
        ref = np.where(hwc(x[i]) < t, hwc(x[i]), 255 - hwc(x[i]))
        np.testing.assert_array_equal(bgr255(y[i]), ref)
    assert len(set(p['threshold'].tolist())) == N  # per sample


def samples(n=N):
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(
            img_shape=(S, S),
            homography_matrix=np.array([[2, 0, -1], [0, 2, -3], [0, 0, 1]],
                                       np.float32)))
        s.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.tensor([[1., 2., 5., 9.]]) + i))
        out.append(s)
    return out


def preprocessor(**kw):
    return MODELS.build(dict(type='MultiViewDataPreprocessor', mean=[0] * 3,
                             std=[1] * 3, bgr_to_rgb=True, **kw))


def test_flip_moves_image_boxes_and_homography():
    x, ss = images(), samples()
    pre = preprocessor(gpu_augment=dict(v1=[dict(type='RandomFlip',
                                                 prob=0.5)]),
                       augment_seed=3)
    out = pre(dict(inputs=dict(v1=list(x), v2=list(x)),
                   data_samples=dict(v1=ss, v2=samples())), training=True)
    y = out['inputs']['v1']
    flipped = [s.metainfo['flip'] for s in out['data_samples']['v1']]
    assert 0 < sum(flipped) < N
    for i, s in enumerate(out['data_samples']['v1']):
        ref = x[i].flip(0).float()  # bgr_to_rgb
        ref = ref.flip(-1) if flipped[i] else ref
        torch.testing.assert_close(y[i], ref)
        box = torch.tensor([1., 2., 5., 9.]) + i
        if flipped[i]:
            box = torch.stack([S - box[2], box[1], S - box[0], box[3]])
        torch.testing.assert_close(s.gt_instances.bboxes[0], box)
        # a source point maps to the same pixel content via the stored H
        h = torch.as_tensor(s.metainfo['homography_matrix'])
        pt = h @ torch.tensor([3., 4., 1.])
        assert pt[0] == ((S - 5.) if flipped[i] else 5.) and pt[1] == 5.
    # an unconfigured view is the plain path, untouched
    torch.testing.assert_close(out['inputs']['v2'], x.flip(1).float())
    assert not any(s.metainfo.get('flip') for s in
                   out['data_samples']['v2'])


def run_steps(pre, steps, x):
    return [pre(dict(inputs=dict(v1=list(x))), training=True)['inputs']['v1']
            for _ in range(steps)]


def test_draws_are_seeded_per_step_and_resume_identically():
    x = images(seed=5)
    aug = dict(v1=OPS[:4])
    a = preprocessor(gpu_augment=aug, augment_seed=7)
    first = run_steps(a, 3, x)
    state = a.state_dict()
    assert state['augment_state'].tolist() == [7, 3]
    after = run_steps(a, 2, x)
    assert not torch.equal(first[0], first[1])  # a new draw every step
    b = preprocessor(gpu_augment=aug, augment_seed=999)
    b.load_state_dict(state)
    for want, got in zip(after, run_steps(b, 2, x)):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
    c = preprocessor(gpu_augment=aug, augment_seed=7)
    torch.testing.assert_close(run_steps(c, 1, x)[0], first[0])
    with pytest.MonkeyPatch.context() as mp:  # another rank, other draws
        mp.setattr('mmselfdet.models.data_preprocessors.multi_view.get_rank',
                   lambda: 1)
        d = preprocessor(gpu_augment=aug, augment_seed=7)
        assert not torch.equal(run_steps(d, 1, x)[0], first[0])
    # eval batches neither augment nor count steps
    a(dict(inputs=dict(v1=list(x))), training=False)
    assert a.state_dict()['augment_state'].tolist() == [7, 5]
    # models without gpu_augment keep their state-dict keys
    assert 'augment_state' not in preprocessor().state_dict()


def test_config_errors_name_the_view_and_op():
    with pytest.raises(KeyError, match=r'gpu_augment\["v1"\]\[1\].*Blur3'):
        preprocessor(gpu_augment=dict(v1=[OPS[0], dict(type='Blur3')]))
    with pytest.raises(ValueError, match=r'gpu_augment\["v1"\]\[0\]'):
        preprocessor(gpu_augment=dict(v1=[dict(type='RandomFlip',
                                               direction='vertical')]))
    pre = preprocessor(gpu_augment=dict(v1=OPS))
    imgs = [torch.zeros(3, S, S, dtype=torch.uint8),
            torch.zeros(3, S, S + 2, dtype=torch.uint8)]
    with pytest.raises(ValueError, match='v1.*differ in size'):
        pre(dict(inputs=dict(v1=imgs)), training=True)



def test_augment_state_survives_an_mmengine_checkpoint(tmp_path):
    """The toy GPU-augmentation config's model: (seed, step) goes through
    mmengine's save_checkpoint / load_checkpoint (weights_only load) and
    the loaded model continues with the same draws."""
    from mmengine.config import Config
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

    from ..utils import REPO
    cfg = Config.fromfile(f'{REPO}/configs/mocov2/'
                          'mocov2-gpuaug_r18_1xb32-180it_toy.py')
    cfg.model.queue_len = 16
    cfg.model.data_preprocessor.augment_seed = 11
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    batch = dict(inputs=dict(view1=list(x), view2=list(x)))
    a = MODELS.build(cfg.model)
    a.data_preprocessor(batch, training=True)
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(state_dict=a.state_dict()), path)
    cfg.model.data_preprocessor.augment_seed = 12
    b = MODELS.build(cfg.model)
    load_checkpoint(b, path, map_location='cpu')
    assert (b.data_preprocessor.augment_seed,
            b.data_preprocessor.augment_step) == (11, 1)
    want = a.data_preprocessor(batch, training=True)['inputs']
    got = b.data_preprocessor(batch, training=True)['inputs']
    for view in ('view1', 'view2'):
        torch.testing.assert_close(got[view], want[view], atol=0, rtol=0)


def test_cutout_follows_the_boxes_a_flip_moved():
    """A cutout after a flip cuts inside the flipped box, in the fill
    colour (BGR ImageNet mean in the pipeline's order)."""
    x = torch.full((N, 3, S, S), 255, dtype=torch.uint8)
    ss = samples()  # box i: (1 + i, 2 + i, 5 + i, 9 + i) before the flip
    aug = BatchedViewAugment([dict(type='RandomFlip', prob=1.0),
                              dict(type='RandomCutoutInBoxes', prob=1.0,
                                   ratio=(0.5, 0.5))])
    out = aug(x, ss, torch.Generator().manual_seed(0)).round()
    for i in range(N):
        cut = (out[i] != 255).any(0)  # (S, S)
        ys, xs = cut.nonzero(as_tuple=True)
        assert len(ys) > 0
        assert xs.min() >= S - 5 - i and xs.max() < S - 1 - i  # flipped
        assert ys.min() >= 2 + i and ys.max() < 9 + i
        assert out[i][:, cut].T.tolist() == [[104., 116., 124.]] * len(ys)
    with pytest.raises(ValueError, match='needs the view'):
        aug(x, None, torch.Generator().manual_seed(0))


def test_patch_mode_augments_every_jigsaw_patch_on_its_own():
    """dict(ops=..., patch_grid=3): each of the 9 patches of a tile is one
    sample: the same as augmenting the cut-out patches (blur borders per
    patch), independent draws per patch."""
    ops = [dict(type='ColorJitter', prob=1.0),
           dict(type='GaussianBlur', prob=1.0)]
    tiles = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(9))
    aug = BatchedViewAugment(dict(ops=ops, patch_grid=3))
    out = aug(tiles, None, torch.Generator().manual_seed(1))
    patches = [tiles[n, :, 16 * r:16 * r + 16, 16 * c:16 * c + 16]
               for n in range(2) for r in range(3) for c in range(3)]
    ref = BatchedViewAugment(ops)(torch.stack(patches), None,
                                  torch.Generator().manual_seed(1))
    got = [out[n, :, 16 * r:16 * r + 16, 16 * c:16 * c + 16]
           for n in range(2) for r in range(3) for c in range(3)]
    torch.testing.assert_close(torch.stack(got), ref)
    # each patch its own draw: no two patches got the same jitter
    params = aug.draw(18, torch.Generator().manual_seed(1))
    assert len(set(params[0]['factors'][:, 0].tolist())) == 18
    with pytest.raises(ValueError, match='pixel ops only'):
        BatchedViewAugment(dict(ops=[dict(type='RandomFlip')],
                                patch_grid=3))


def test_flip_bookkeeping_equals_mmdets_random_flip():
    """``batched_box_ops.BatchedHorizontalFlip.move_samples`` on its own:
    a flipped sample's boxes (mmdet boxes or a plain tensor) and
    homography are mmdet's ``RandomFlip``'s, empty boxes stay empty, an
    unflipped sample is marked so, a sample the CPU already flipped is an
    error."""
    from mmdet.datasets.transforms import RandomFlip

    from mmselfdet.models.utils.batched_box_ops import BatchedHorizontalFlip
    hom = np.array([[1., 0., 3.], [0., 2., 1.], [0., 0., 1.]], np.float32)
    boxes = np.array([[1., 2., 5., 9.], [0., 0., 16., 7.]], np.float32)

    def sample(kind):
        s = DetDataSample(metainfo=dict(img_shape=(S, S),
                                        homography_matrix=hom.copy()))
        b = torch.from_numpy(boxes.copy())
        s.gt_instances = InstanceData(
            bboxes=b if kind == 'tensor' else HorizontalBoxes(b)[
                :0 if kind == 'empty' else 2])
        return s

    ss = [sample('boxes'), sample('tensor'), sample('empty'),
          sample('boxes')]
    BatchedHorizontalFlip.move_samples(
        ss, torch.tensor([True, True, True, False]), S)
    ref = RandomFlip(prob=1.0, direction='horizontal')(dict(
        img=np.zeros((S, S, 3), np.uint8), img_shape=(S, S),
        gt_bboxes=HorizontalBoxes(torch.from_numpy(boxes.copy())),
        homography_matrix=hom.copy()))
    for s in ss[:3]:
        assert s.flip is True and s.flip_direction == 'horizontal'
        assert s.homography_matrix.dtype == np.float32
        np.testing.assert_array_equal(s.homography_matrix,
                                      ref['homography_matrix'])
    torch.testing.assert_close(ss[0].gt_instances.bboxes.tensor,
                               ref['gt_bboxes'].tensor, rtol=0, atol=0)
    torch.testing.assert_close(ss[1].gt_instances.bboxes,
                               ref['gt_bboxes'].tensor, rtol=0, atol=0)
    assert ss[2].gt_instances.bboxes.tensor.shape == (0, 4)
    assert ss[3].flip is False and ss[3].flip_direction is None
    np.testing.assert_array_equal(ss[3].homography_matrix, hom)
    with pytest.raises(ValueError, match='already flipped'):
        BatchedHorizontalFlip.move_samples(ss[:1], torch.tensor([True]), S)
