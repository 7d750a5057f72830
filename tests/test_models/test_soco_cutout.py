# Copyright (c) mmselfdet contributors. All rights reserved.
"""SoCo's V2 / V3 cutout in box on the device (issue 16 leftover, end-to-end
SoCo): ``cutout_in_boxes`` changes only pixels inside the boxes, at the
configured rate and area ratio, reproducibly; ``SoCo(cutout=...)`` applies
it to V2 / V3 at their heat-map boxes before either network sees them."""
from unittest import mock

import torch

from mmselfdet.models.utils import BoxEncoder
from mmselfdet.models.utils.photometric import cutout_in_boxes
from mmselfdet.registry import MODELS
from .test_heatmap_e2e import e2e_batch, e2e_cfg

N, S = 600, 32  # images, side: 4 boxes per image, one per quadrant


def quadrant_boxes(gen: torch.Generator) -> list:
    """Per image 4 non-overlapping boxes (fractional corners), 11-15 px."""
    out = []
    for _ in range(N):
        lo = 0.5 + 1.5 * torch.rand(4, 2, generator=gen)  # (4, 2)
        hi = 13 + 2.5 * torch.rand(4, 2, generator=gen)
        shift = torch.tensor([[0, 0], [16, 0], [0, 16], [16, 16]])
        out.append(torch.cat([lo + shift, hi + shift], 1))  # (4, 4)
    return out


def inner(box):
    """The box's inner pixel ranges (x0, x1, y0, y1), end exclusive."""
    x1, y1, x2, y2 = box.tolist()
    return (int(torch.tensor(x1).ceil()), int(torch.tensor(x2).floor()),
            int(torch.tensor(y1).ceil()), int(torch.tensor(y2).floor()))


def test_cutout_changes_only_inside_the_boxes_at_the_rate_and_ratio():
    gen = torch.Generator().manual_seed(0)
    img = 1 + torch.rand(N, 3, S, S, generator=gen)  # never the fill (0)
    boxes = quadrant_boxes(gen)
    out = cutout_in_boxes(img, boxes, prob=0.5, ratio=(0.1, 0.3),
                          generator=torch.Generator().manual_seed(1))
    changed = (out != img)  # (N, 3, S, S)
    assert torch.equal(changed, changed[:, :1].expand_as(changed))
    assert (out[changed] == 0).all()
    changed = changed[:, 0]  # (N, S, S)
    allowed = torch.zeros_like(changed)
    cuts, ratios = 0, []
    for i, per_image in enumerate(boxes):
        for box in per_image:
            x0, x1, y0, y1 = inner(box)
            allowed[i, y0:y1, x0:x1] = True
            ys, xs = changed[i, y0:y1, x0:x1].nonzero(as_tuple=True)
            if not len(ys):
                continue
            cuts += 1
            # one square, inside the box
            h, w = int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1
            assert h == w and len(ys) == h * w
            area = float((box[2] - box[0]) * (box[3] - box[1]))
            ratios.append(h * w / area)
            assert (h - 0.5)**2 <= 0.3 * area + 1e-6
            assert (h + 0.5)**2 >= 0.1 * area - 1e-6
    assert not (changed & ~allowed).any()  # nothing outside the boxes
    rate = cuts / (4 * N)  # 2400 boxes: sd 0.010
    assert abs(rate - 0.5) < 0.04, rate
    mean = sum(ratios) / len(ratios)
    assert 0.17 < mean < 0.23, mean  # uniform (0.1, 0.3), rounded sides
    # seeded: the same generator state gives the same cut
    again = cutout_in_boxes(img, boxes, generator=torch.Generator(
    ).manual_seed(1))
    assert torch.equal(again, out)
    assert torch.equal(cutout_in_boxes(img, boxes, prob=0.0), img)


def test_e2e_cutout_hits_v2_v3_at_their_boxes_before_both_networks():
    torch.manual_seed(0)
    model = MODELS.build(e2e_cfg(jitter=None, extra_crops=None,
                                 cutout=dict(prob=1.0, ratio=(0.2, 0.2))))
    model.eval()
    data = model.data_preprocessor(e2e_batch(), True)
    seen, rec = [], {}
    real_features, real_source = BoxEncoder.features, model.box_source.forward

    def on_features(encoder, img):
        seen.append(img.detach().clone())
        return real_features(encoder, img)

    def on_source(*args):
        rec['boxes'] = real_source(*args)
        return rec['boxes']

    with mock.patch.object(BoxEncoder, 'features', autospec=True,
                           side_effect=on_features), \
            mock.patch.object(model.box_source, 'forward',
                              side_effect=on_source):
        model(**data, mode='loss')
    # forwards: target V1 (heat), target V2, V3, online V1, V2, V3
    assert len(seen) == 6
    inputs = [data['inputs'][v] for v in model.views]
    assert torch.equal(seen[0], inputs[0]) and torch.equal(seen[3], inputs[0])
    for view in (1, 2):
        got = seen[view]
        assert torch.equal(got, seen[view + 3])  # online sees the same cut
        changed = (got != inputs[view]).any(1)  # (N, H, W)
        assert changed.any()
        assert (got.permute(0, 2, 3, 1)[changed] == 0).all()
        allowed = torch.zeros_like(changed)
        for i, per_image in enumerate(rec['boxes'].boxes[view]):
            for box in per_image:
                x0, x1, y0, y1 = inner(box)
                allowed[i, y0:y1, x0:x1] = True
        assert not (changed & ~allowed).any()


def test_e2e_configs_cut_out_in_boxes_by_default():
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'soco')
    for name in ('soco-e2e_r18_fpn_1xb32-150it_toy.py',
                 'soco-e2e_r50_fpn_8xb32-lars-100e_in1k.py',
                 'soco-e2e_r50_fpn_8xb32-lars-400e_in1k.py'):
        cutout = Config.fromfile(osp.join(root, name)).model.cutout
        assert cutout['prob'] == 0.5 and tuple(cutout['ratio']) == (0.1, 0.3)
