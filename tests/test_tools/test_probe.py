# Copyright (c) mmselfdet contributors. All rights reserved.
"""The frozen-feature probe (tools/benchmarks/probe.py): exact crop pixels,
k-NN and AP against independent computations, a linear probe whose weight
decay never sees val, features of exported / raw / random backbones equal
to a hand-loaded ResNet, clear errors, and one CLI run through --out."""
import json
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.backbones import ResNet

from mmselfdet.evaluation.probe import (ProbeError, average_precision,
                                        collapse_stats,
                                        knn_scores, linear_probe,
                                        mean_average_precision, run_probe)
from mmselfdet.evaluation.probe_features import (IMAGENET_MEAN, IMAGENET_STD,
                                                 build_backbone, crop_box,
                                                 extract_features, load_coco,
                                                 make_samples)
from ..utils import REPO, load_tool

COLOURS = [(255, 0, 0), (0, 0, 255), (0, 200, 0)]  # RGB per category


def write_coco(root, split, images):
    """Write ``images`` = [(RGB uint8 array, [(bbox, cat_id), ...])] as PNGs
    in ROOT/SPLIT/ and ROOT/annotations/SPLIT.json (the toy layout)."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations').mkdir(exist_ok=True)
    imgs, anns = [], []
    for i, (pix, boxes) in enumerate(images):
        name = f'{i:03d}.png'
        cv2.imwrite(str(root / split / name), pix[..., ::-1])
        imgs.append(dict(id=i + 1, file_name=name, width=pix.shape[1],
                         height=pix.shape[0]))
        for bbox, cat in boxes:
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, bbox=bbox,
                             category_id=cat, area=bbox[2] * bbox[3],
                             iscrowd=0))
    path = root / 'annotations' / f'{split}.json'
    path.write_text(json.dumps(dict(
        images=imgs, annotations=anns,
        categories=[dict(id=c + 1, name=f'c{c}') for c in range(3)])))
    return str(path)


def shapes_set(n, seed):
    """``n`` 48 px grey images, each with two coloured 14 px squares."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pix = np.full((48, 48, 3), 128, np.uint8)
        boxes = []
        for j, (x, y) in enumerate(((4, 6), (28, 26))):
            cat = (i + j) % 3
            pix[y:y + 14, x:x + 14] = COLOURS[cat]
            pix[y:y + 14, x:x + 14] += rng.integers(0, 20, (14, 14, 3),
                                                    dtype=np.uint8)
            boxes.append(([x, y, 14, 14], cat + 1))
        out.append((pix, boxes))
    return out


def ramp_image(h=40, w=50):
    """Every pixel unique: R = row, G = column, B = row + column."""
    yy, xx = np.mgrid[:h, :w]
    return np.stack([yy, xx, yy + xx], -1).astype(np.uint8)


def test_crop_is_exactly_the_box_pixels(tmp_path):
    img = ramp_image()
    np.testing.assert_array_equal(crop_box(img, [5, 7, 10, 12]),
                                  img[7:19, 5:15])
    # fractional boxes take the outer integer bounds; context widens them
    np.testing.assert_array_equal(crop_box(img, [5.5, 7.2, 9, 11.3]),
                                  img[7:19, 5:15])
    np.testing.assert_array_equal(crop_box(img, [5, 7, 10, 12], context=3),
                                  img[4:22, 2:18])
    # clipped at the image border
    np.testing.assert_array_equal(crop_box(img, [44, 1, 10, 5], context=2),
                                  img[0:8, 42:50])
    # through the file + json path: a 16 px box resized to 16 px is exact
    ann = write_coco(tmp_path, 'train', [(img, [([20, 9, 16, 16], 2),
                                               ([0, 0, 16, 16], 3)])])
    x, y, groups = make_samples(load_coco(ann), str(tmp_path / 'train'),
                                'crops', 16)
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(),
                                  img[9:25, 20:36])
    np.testing.assert_array_equal(x[1].permute(1, 2, 0).numpy(),
                                  img[0:16, 0:16])
    assert y.tolist() == [1, 2] and groups.tolist() == [1, 1]


def test_knn_equals_brute_force():
    rng = np.random.default_rng(0)
    tr, te = rng.normal(size=(30, 6)), rng.normal(size=(9, 6))
    ytr = rng.integers(0, 4, 30)
    k, T = 7, 0.07
    votes = knn_scores(torch.tensor(tr, dtype=torch.float32),
                       torch.tensor(ytr), torch.tensor(te,
                                                       dtype=torch.float32),
                       4, k=k, temperature=T)
    for i in range(len(te)):
        cos = [float(te[i] @ tr[j]) / (np.linalg.norm(te[i]) *
                                      np.linalg.norm(tr[j]))
               for j in range(len(tr))]
        nearest = sorted(range(len(tr)), key=lambda j: -cos[j])[:k]
        want = [0.0] * 4
        for j in nearest:
            want[ytr[j]] += math.exp(cos[j] / T)
        total = sum(want)
        np.testing.assert_allclose(votes[i].numpy(),
                                   [v / total for v in want], atol=1e-5)
        assert int(votes[i].argmax()) == int(np.argmax(want))


def brute_ap(scores, labels):
    """AP = sum over distinct thresholds t (descending) of the recall gain
    times the precision of {score >= t}."""
    npos, ap, prev = sum(labels), 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        sel = [lab for s, lab in zip(scores, labels) if s >= t]
        rec = sum(sel) / npos
        ap += (rec - prev) * sum(sel) / len(sel)
        prev = rec
    return ap


def test_average_precision_hand_example_and_independent():
    # ranks: + - + -  -> (1/1 + 2/3) / 2
    ap = average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6]),
                           torch.tensor([1, 0, 1, 0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    # a tie of a positive and a negative counts as one threshold: 1/2
    assert average_precision(torch.tensor([0.5, 0.5]),
                             torch.tensor([1, 0])) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, (25, 3)) / 5.0  # many ties
    labels = rng.integers(0, 2, (25, 3))
    labels[:, 2] = 0  # a class without positives is left out of the mean
    labels[0, 0] = labels[0, 1] = 1
    want = [brute_ap(list(scores[:, c]), list(labels[:, c]))
            for c in range(2)]
    got = mean_average_precision(torch.tensor(scores), torch.tensor(labels))
    assert got == pytest.approx(sum(want) / 2)


def test_linear_probe_separable_reaches_100():
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 8) * 5  # (3, 8)
    ytr, yte = torch.arange(60) % 3, torch.arange(30) % 3
    xtr = centres[ytr] + 0.3 * torch.randn(60, 8, generator=gen)
    xte = centres[yte] + 0.3 * torch.randn(30, 8, generator=gen)
    for norm in ('standard', 'l2'):
        res = linear_probe(xtr, ytr, torch.arange(60), xte, 3, norm=norm)
        assert (res['scores'].argmax(1) == yte).all()
        best = max(res['holdout_scores'].values())
        assert best == 100.0 and res['wd'] == max(
            w for w, v in res['holdout_scores'].items() if v == best)
        assert res['n_holdout'] == 12


def test_weight_decay_is_chosen_without_val(tmp_path):
    train = write_coco(tmp_path, 'train', shapes_set(6, 0))
    val_set = shapes_set(3, 1)
    val = write_coco(tmp_path, 'val', val_set)
    flipped = [(pix, [(b, c % 3 + 1) for b, c in boxes])
               for pix, boxes in val_set]
    write_coco(tmp_path / 'f', 'val', flipped)
    kw = dict(checkpoint='random', train_ann=train, mode='crops', size=32,
              k=3, wd_grid=(0.0, 1.0, 100.0), holdout=0.34)
    a = run_probe(val_ann=val, **kw)
    b = run_probe(val_ann=str(tmp_path / 'f/annotations/val.json'),
                  val_img_prefix=str(tmp_path / 'val'), **kw)
    assert a['linear']['wd'] == b['linear']['wd']
    assert a['linear']['holdout_top1'] == b['linear']['holdout_top1']
    assert a['linear']['top1'] != b['linear']['top1']


def random_backbone_state(depth=18):
    """An mmdet ResNet state dict with every tensor (BN statistics too)
    random, so that equal features mean the right tensors were loaded."""
    gen = torch.Generator().manual_seed(3)
    state = ResNet(depth=depth).state_dict()
    return {k: (torch.rand(v.shape, generator=gen) + 0.5
                if v.is_floating_point() else v) for k, v in state.items()}


def hand_features(state, pixels, stages=(5, )):
    net = ResNet(depth=18, out_indices=(0, 1, 2, 3))
    net.load_state_dict(state)
    net.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        maps = net((pixels.float() - mean) / std)
    return torch.cat([maps[s - 2].mean((2, 3)) for s in stages], 1)


def test_exported_checkpoint_features_equal_hand_loaded(tmp_path):
    state = random_backbone_state()
    sd = {'backbone.' + k: v for k, v in state.items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.ones(2, 2, 1, 1)
    path = str(tmp_path / 'exported.pth')
    torch.save(dict(state_dict=sd, meta=dict(method='MoCoV2')), path)
    pixels = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    model = build_backbone(path)
    assert not model.training and model.depth == 18
    for stages in ((5, ), (2, 5)):
        torch.testing.assert_close(
            extract_features(model, pixels, stages, batch_size=2),
            hand_features(state, pixels, stages), rtol=1e-5, atol=1e-5)
    with pytest.raises(ProbeError, match='ResNet-18, not the requested'):
        build_backbone(path, depth=50)


def test_raw_pretraining_checkpoint_takes_the_backbone(tmp_path):
    from mmengine.config import Config

    from mmselfdet.registry import MODELS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/mocov2/mocov2_r18_1xb32-180it_toy.py'))
    state = MODELS.build(cfg.model).state_dict()
    gen = torch.Generator().manual_seed(1)
    state = {k: (torch.randn(v.shape, generator=gen)
                 if v.is_floating_point() else v) for k, v in state.items()}
    path = str(tmp_path / 'iter_3.pth')
    torch.save(dict(state_dict=state, meta=dict(cfg=cfg.pretty_text)), path)
    got = build_backbone(path).state_dict()
    want = {k[len('backbone.'):]: v for k, v in state.items()
            if k.startswith('backbone.')}
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_raw_c4_checkpoint_takes_res5_from_the_roi_head(tmp_path):
    """A C4 InsLoc run keeps res5 in its box embedder: the exporter's
    transfer set maps it to roi_head.shared_head.layer4 (= C5 here); the
    momentum encoder's copies are left behind."""
    state = random_backbone_state()
    sd = {}
    for k, v in state.items():
        if k.startswith('layer4.'):
            sd['box_embedder.shared_head.' + k] = v
        else:
            sd['backbone.' + k] = v
        sd['momentum_encoder.backbone.' + k] = torch.zeros_like(v)
    path = str(tmp_path / 'iter_5.pth')
    torch.save(dict(state_dict=sd,
                    meta=dict(cfg="model = dict(type='InsLoc')\n")), path)
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        extract_features(build_backbone(path), pixels),
        hand_features(state, pixels), rtol=1e-5, atol=1e-5)


def test_collapse_stats_tell_collapsed_from_spread_features():
    same = torch.tensor([[3.0, 4.0]]).repeat(5, 1)  # one direction
    got = collapse_stats(same)
    assert got['normed_std'] == pytest.approx(0.0, abs=1e-9)
    assert got['mean_cosine'] == pytest.approx(1.0)
    eye = torch.eye(4) * 7.0  # orthogonal: every pair has cosine 0
    assert collapse_stats(eye)['mean_cosine'] == pytest.approx(0.0)
    # independently: mean over pairs of cosines of a random set
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    z = torch.nn.functional.normalize(x.double(), dim=1)
    pairs = [float(z[i] @ z[j]) for i in range(6) for j in range(6)
             if i != j]
    assert collapse_stats(x)['mean_cosine'] == pytest.approx(
        sum(pairs) / len(pairs))
    # std of normalised coordinates x sqrt(D): (+-1, 0) points -> sqrt(2)
    # x mean(std([1, -1]), std([0, 0])) = sqrt(2) x 0.7071 = 1
    pm = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert collapse_stats(pm)['normed_std'] == pytest.approx(1.0)


def test_random_init_is_seeded_and_zero_init_residual():
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    a = extract_features(build_backbone('random', seed=4), pixels)
    b = extract_features(build_backbone('random', seed=4), pixels)
    c = extract_features(build_backbone('random', seed=5), pixels)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    zero = build_backbone('random', zero_init_residual=True)
    ones = build_backbone('random', zero_init_residual=False)
    assert (zero.layer3[1].norm2.weight == 0).all()
    assert (ones.layer3[1].norm2.weight == 1).all()


def test_errors_name_the_file_or_key(tmp_path):
    ann = write_coco(tmp_path, 'train', shapes_set(2, 0))
    (tmp_path / 'train' / '001.png').unlink()
    with pytest.raises(ProbeError, match='001.png" not found'):
        make_samples(load_coco(ann), str(tmp_path / 'train'), 'crops', 16)
    (tmp_path / 'train' / '001.png').write_bytes(b'not an image')
    with pytest.raises(ProbeError, match='001.png" cannot be read'):
        make_samples(load_coco(ann), str(tmp_path / 'train'), 'crops', 16)
    empty = write_coco(tmp_path, 'empty', [(ramp_image(), [])])
    with pytest.raises(ProbeError, match='empty.json: empty annotation'):
        load_coco(empty)
    ckpt = str(tmp_path / 'neck_only.pth')
    torch.save(dict(state_dict={'neck.w': torch.zeros(1)}), ckpt)
    with pytest.raises(ProbeError, match='neck_only.pth: no "backbone'):
        build_backbone(ckpt)
    with pytest.raises(ProbeError, match='missing.pth" not found'):
        build_backbone(str(tmp_path / 'missing.pth'))


def test_cli_end_to_end_and_multilabel(tmp_path, capsys):
    images = shapes_set(4, 0)
    train = write_coco(tmp_path, 'train', images)
    # val = the train images: the 1-NN of every crop is itself
    val = write_coco(tmp_path, 'val', images)
    out = tmp_path / 'res' / 'probe.json'
    cli = load_tool('tools/benchmarks/probe.py')
    cli.main(['random', '--train-ann', train, '--val-ann', val, '--k', '1',
              '--crop-size', '32', '--holdout', '0.25', '--out', str(out)])
    res = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.strip()) == res
    assert res['n_train'] == res['n_val'] == 8 and res['num_classes'] == 3
    assert res['knn']['top1'] == 100.0 and res['feature_dim'] == 512
    assert res['linear']['wd'] in res['linear']['wd_grid']
    multi = run_probe('random', train, val, mode='images', size=32, k=1,
                      holdout=0.25)
    assert multi['metric'] == 'mAP' and multi['knn']['mAP'] == 100.0
    assert multi['n_train'] == 4
