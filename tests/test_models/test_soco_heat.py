# Copyright (c) mmselfdet contributors. All rights reserved.
"""End-to-end SoCo heat options (issue 16): which network the heat map is
taken from (``heat_network``), the warm-up before the heat boxes are used
(``heat_warmup``) and the centre-bias reading of center-suppressed sampling
(``HeatMapProposer(center_suppress=...)``)."""
from unittest import mock

import pytest
import torch

from mmselfdet.registry import MODELS
from .box_checks import ema_off_online
from .test_heatmap_e2e import e2e_batch, e2e_cfg

# e2e_batch: V2 sees x in [0, 32] of V1, V3 sees y in [32, 64]
SHARED = [0.0, 32.0, 32.0, 64.0]


def build(**kw):
    torch.manual_seed(0)
    model = MODELS.build(e2e_cfg(jitter=None, extra_crops=None, **kw))
    model.eval()  # BN on running statistics: features are per image
    # the target apart from the online net, so the two heats differ
    ema_off_online(model.target_net)
    return model


def heat_input(model):
    """The feature map the proposer got in one loss call."""
    data = model.data_preprocessor(e2e_batch(), True)
    seen = []
    real = model.box_source.proposer.forward

    def record(feat, *args, **kwargs):
        seen.append(feat.detach().clone())
        return real(feat, *args, **kwargs)

    with mock.patch.object(model.box_source.proposer, 'forward',
                           side_effect=record):
        model(**data, mode='loss')
    assert len(seen) == 1
    return seen[0], data


def test_heat_from_the_target_by_default_or_the_online_network():
    model = build()
    feat, data = heat_input(model)
    v1 = data['inputs']['v1']
    with torch.no_grad():
        stage = model.box_source.heat_stage
        online = model.backbone(v1)[stage]
        target = model.target_net.module.backbone(v1)[stage]
    assert not torch.allclose(online, target, atol=1e-3)
    assert torch.allclose(feat, target, atol=1e-5)
    model = build(heat_network='online')
    feat, data = heat_input(model)
    with torch.no_grad():
        online = model.backbone(data['inputs']['v1'])[
            model.box_source.heat_stage]
    assert torch.allclose(feat, online, atol=1e-5)


def proposals_per_call(model, calls):
    data = model.data_preprocessor(e2e_batch(), True)
    out, used = [], []
    real = model.box_source.forward

    def record(*args):
        boxes = real(*args)
        out.append([b.clone() for b in boxes.boxes[0]])
        used.append(float(boxes.stats['heat_warmup']))
        return boxes

    with mock.patch.object(model.box_source, 'forward', side_effect=record):
        for _ in range(calls):
            model(**data, mode='loss')
    return out, used


def test_whole_image_warmup_then_heat_boxes():
    """'whole': the first ``iters`` steps use one box per image, the part of
    V1 that V2 and V3 both see (BYOL on that region), then the heat."""
    model = build(heat_warmup=dict(iters=2, mode='whole'))
    proposer = model.box_source.proposer
    with mock.patch.object(proposer, 'forward',
                           wraps=proposer.forward) as heat:
        boxes, used = proposals_per_call(model, 3)
        assert heat.call_count == 1  # only the third step
    assert used == [1.0, 1.0, 0.0]
    for step in boxes[:2]:
        for per_image in step:
            assert per_image.tolist() == [SHARED]
    assert int(model.heat_step) == 3
    assert 'heat_step' in model.state_dict()  # resumes with the run


def test_random_box_warmup():
    """'random': SoCo-style random boxes (official random_generate_props:
    sqrt-area ratio 0.3-0.8, aspect 1/3-3) inside the shared region."""
    model = build(heat_warmup=dict(iters=5, mode='random',
                                   area_ratio_range=(0.3, 0.5)))
    boxes, used = proposals_per_call(model, 2)
    assert used == [1.0, 1.0]
    k = model.box_source.proposer.num_boxes
    sizes = set()
    for step in boxes:
        for per_image in step:
            assert per_image.shape == (k, 4)
            x1, y1, x2, y2 = per_image.unbind(1)
            assert (x1 >= SHARED[0] - 1e-4).all() and \
                (x2 <= SHARED[2] + 1e-4).all()
            assert (y1 >= SHARED[1] - 1e-4).all() and \
                (y2 <= SHARED[3] + 1e-4).all()
            area = (x2 - x1) * (y2 - y1)
            # sqrt-area ratio within the range (clamping only shrinks)
            assert ((area / 32**2).sqrt() <= 0.5 + 1e-4).all()
            assert (x2 > x1).all() and (y2 > y1).all()
            sizes.update(area.round().tolist())
    assert len(sizes) > k  # random, not one fixed box
    # no warm-up configured: no counter in the checkpoint
    assert 'heat_step' not in build().state_dict()


def test_centre_bias_suppression_switch():
    """The second reading of 'center-suppressed sampling': damp the image
    centre of the heat (a centred Gaussian, ``center_suppress`` of it
    removed) before the draws; off (0) by default."""
    from mmselfdet.models.proposers.heatmap import HeatMapProposer
    feat = torch.ones(1, 4, 9, 9)
    feat[:, :, 0, 0] = 0.0  # min-max needs some contrast
    plain = HeatMapProposer(map_size=None)
    assert plain.center_suppress == 0.0
    damped = HeatMapProposer(map_size=None, center_suppress=0.5,
                             center_sigma=0.25)
    h0, h1 = plain.heat_map(feat)[0], damped.heat_map(feat)[0]
    # flat heat: the centre is now the coolest cell apart from (0, 0), the
    # heat rises with the distance from the centre, and stays in [0, 1]
    assert float(h1[4, 4]) < float(h1[4, 0]) < float(h1[8, 8]) + 1e-6
    assert torch.allclose(h0[1:, 1:], torch.ones(8, 8))
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(9.0),
                            indexing='ij')
    # pixel centres in [0, 1] of the map; Gaussian of sigma 0.25 x side
    d2 = ((xs + 0.5) / 9 - 0.5)**2 + ((ys + 0.5) / 9 - 0.5)**2
    prior = 1 - 0.5 * torch.exp(-d2 / (2 * 0.25**2))
    want = h0 * prior
    want = (want - want.min()) / (want.max() - want.min())
    assert torch.allclose(h1, want, atol=1e-5)
    with pytest.raises(ValueError, match='center_suppress'):
        HeatMapProposer(center_suppress=1.5)
