# Copyright (c) mmselfdet contributors. All rights reserved.
"""channels_last (``ChannelsLastHook`` / ``to_channels_last``): the same
losses and gradients as NCHW, RoI features included."""
import copy
from types import SimpleNamespace

import torch
from mmcv.ops import RoIAlign

from mmselfdet.engine.hooks import ChannelsLastHook
from mmselfdet.models.utils.memory_format import to_channels_last
from mmselfdet.registry import MODELS
from .test_insloc import batch_with_boxes, tiny_insloc

CL = torch.channels_last


def test_mmcv_roialign_needs_the_guard():
    """mmcv's RoIAlign misreads a channels_last map (no error); a guarded
    one reads it as the NCHW map."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 16, 16, generator=g)
    rois = torch.tensor([[0, 1., 1., 9., 12.], [1, 3., 2., 15., 8.]])
    op = RoIAlign((7, 7), 0.5, 0)
    ref = op(x, rois)
    assert not torch.allclose(op(x.contiguous(memory_format=CL), rois), ref)
    model = torch.nn.Sequential(op)
    assert to_channels_last(model) == 1
    assert to_channels_last(model) == 0  # guarded once
    torch.testing.assert_close(op(x.contiguous(memory_format=CL), rois), ref)


def _loss_and_grads(model, data):
    torch.manual_seed(1)  # the same jitter draws in both runs
    losses = model(**model.data_preprocessor(copy.deepcopy(data), True),
                   mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    model.zero_grad()
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def test_insloc_in_channels_last_gives_the_same_losses_and_gradients():
    torch.manual_seed(0)
    model = MODELS.build(tiny_insloc())
    model.init_weights()
    model.eval()  # BN on running statistics: the two runs see one model
    converted = copy.deepcopy(model)
    assert to_channels_last(converted) > 0
    conv = converted.online_encoder.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=CL) and not conv.is_contiguous()
    data = batch_with_boxes([[4, 4, 40, 36], [10, 20, 60, 60]],
                            [[0, 0, 32, 32], [30, 30, 62, 50]])
    # the FPN maps reaching RoIAlign are channels_last in the converted
    # model (so the guard is what keeps its RoI features right)
    seen = []
    converted.online_encoder.neck.register_forward_hook(
        lambda m, i, out: seen.extend(o.is_contiguous(memory_format=CL)
                                      and not o.is_contiguous() for o in out))
    ref_losses, ref_grads = _loss_and_grads(model, data)
    losses, grads = _loss_and_grads(converted, data)
    assert ref_losses.keys() == losses.keys()
    for k in ref_losses:
        torch.testing.assert_close(losses[k], ref_losses[k], rtol=1e-4,
                                   atol=1e-5)
    assert seen and all(seen)
    assert ref_grads.keys() == grads.keys() and len(grads) > 0
    for n in ref_grads:
        torch.testing.assert_close(grads[n], ref_grads[n], rtol=1e-3,
                                   atol=1e-5, msg=n)


def test_hook_converts_the_model():
    from mmselfdet.engine.hooks import channels_last_hook
    from mmselfdet.registry import HOOKS
    hook = HOOKS.build(dict(type='ChannelsLastHook'))  # the config switch
    assert type(hook) is channels_last_hook.ChannelsLastHook is \
        ChannelsLastHook
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), RoIAlign(2, 1.0))
    runner = SimpleNamespace(model=model)
    hook.before_run(runner)
    assert model[0].weight.is_contiguous(memory_format=CL)
    assert model[1]._nchw_guard
