# Copyright (c) mmselfdet contributors. All rights reserved.
"""``SplitBN`` (mmselfdet/models/utils/split_norm.py): shuffle-BN on one
process. Each contiguous part of the batch is normalised with its own
statistics (checked against the formula), a sample never reaches another
part's outputs (also through InsLoc's box head, whose rows are box-major),
the keys are the per-part encodings of the shuffled batch, and the weights
load into plain BatchNorm layers."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.structures.bbox import bbox2roi

from mmselfdet.models.utils import SplitBatchNorm, momentum_keys
from mmselfdet.models.utils.box_encoder import BoxEncoder
from mmselfdet.registry import MODELS

from .test_insloc import tiny_insloc


def manual_bn(x, weight, bias, eps=1e-5):
    """Batch normalisation of ``x`` (N, C, ...) over all but dim 1."""
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    shape = [1, -1] + [1] * (x.dim() - 2)
    return ((x - mean) / torch.sqrt(var + eps) * weight.view(shape) +
            bias.view(shape))


@pytest.mark.parametrize('shape', [(8, 3), (8, 3, 5, 5), (6, 3, 4)])
def test_each_part_is_normalised_with_its_own_statistics(shape):
    torch.manual_seed(0)
    g = 2
    bn = SplitBatchNorm(3, num_splits=g)
    nn.init.uniform_(bn.weight, 0.5, 2.0)
    nn.init.uniform_(bn.bias, -1.0, 1.0)
    x = torch.randn(shape) * 3 + torch.arange(shape[0]).view(
        -1, *[1] * (len(shape) - 1))  # parts with different means
    out = bn.train()(x)
    expected = torch.cat([manual_bn(p, bn.weight, bn.bias)
                          for p in x.chunk(g)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # one plain BatchNorm over the whole batch gives something else
    assert not torch.allclose(out, manual_bn(x, bn.weight, bn.bias),
                              atol=1e-3)
    # the running statistics saw every part
    assert int(bn.num_batches_tracked) == g


def test_every_sample_gets_a_gradient_only_from_its_own_part():
    torch.manual_seed(0)
    bn = SplitBatchNorm(3, num_splits=2).train()
    x = torch.randn(6, 3, 4, 4, requires_grad=True)
    out = bn(x)
    # a loss on part 1 only: part 0 gets no gradient, every row of part 1
    # does (BatchNorm couples the rows of one part)
    (out[3:] * torch.randn_like(out[3:])).sum().backward()
    assert torch.count_nonzero(x.grad[:3]) == 0
    assert all(torch.count_nonzero(g) > 0 for g in x.grad[3:])


def test_eval_mode_and_one_split_are_plain_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5)
    plain, split = nn.BatchNorm2d(3), SplitBatchNorm(3, num_splits=1)
    torch.testing.assert_close(split.train()(x), plain.train()(x))
    split4 = SplitBatchNorm(3, num_splits=4)
    split4.load_state_dict(plain.state_dict())
    torch.testing.assert_close(split4.eval()(x), plain.eval()(x))


def test_config_builds_a_bn_named_layer_whose_weights_load_into_bn():
    conv = ConvModule(3, 4, 3, norm_cfg=dict(type='SplitBN', num_splits=2))
    assert conv.norm_name == 'bn'
    assert isinstance(conv.bn, SplitBatchNorm) and conv.bn.num_splits == 2
    plain = ConvModule(3, 4, 3, norm_cfg=dict(type='BN'))
    assert isinstance(plain.bn, nn.BatchNorm2d)
    plain.load_state_dict(conv.state_dict(), strict=True)


def test_bad_values_are_named():
    with pytest.raises(ValueError, match='num_splits'):
        SplitBatchNorm(3, num_splits=0)
    with pytest.raises(ValueError, match='6 rows.*num_splits=4'):
        SplitBatchNorm(3, num_splits=4).train()(torch.randn(6, 3))


def split_insloc(norm):
    cfg = tiny_insloc()
    norm_cfg = dict(type=norm, num_splits=2) if norm == 'SplitBN' else dict(
        type=norm)
    for part in ('backbone', 'neck', 'box_embedder'):
        cfg[part]['norm_cfg'] = norm_cfg
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def embed(encoder: BoxEncoder, img, boxes):
    return torch.cat(encoder(img, bbox2roi(boxes.split(1))), dim=1)


def boxes_for(n):
    return torch.tensor([[4., 4., 40., 36.]]).repeat(n, 1) + torch.arange(
        n).float().view(-1, 1)


@pytest.mark.parametrize('norm, isolated', [('SplitBN', True),
                                            ('BN', False)])
def test_insloc_box_embeddings_of_one_part_ignore_the_other_part(
        norm, isolated):
    """4 images in 2 parts: perturbing image 3 leaves the embeddings (every
    level, through backbone, FPN and the box head) of images 0 and 1
    unchanged with SplitBN, and changes them with a batch-wide BN (the
    test can fail)."""
    model = split_insloc(norm)
    torch.manual_seed(1)
    img, boxes = torch.randn(4, 3, 64, 64), boxes_for(4)
    with torch.no_grad():
        ref = embed(model.online_encoder, img, boxes)  # (4, L * D)
        img2 = img.clone()
        img2[3] = torch.randn(3, 64, 64)
        out = embed(model.online_encoder, img2, boxes)
    assert not torch.allclose(out[3], ref[3])
    assert torch.allclose(out[:2], ref[:2], atol=1e-6) == isolated


def test_insloc_keys_are_the_per_part_encodings_of_the_shuffled_batch():
    model = split_insloc('SplitBN')
    torch.manual_seed(1)
    img, boxes = torch.randn(4, 3, 64, 64), boxes_for(4)

    def encode(enc, im, bx):
        return enc(im, bbox2roi(bx.split(1)))

    with torch.no_grad():
        torch.manual_seed(7)
        keys = momentum_keys(model.momentum_encoder, img, boxes,
                             encode=encode)  # L x (4, D)
        torch.manual_seed(7)
        perm = torch.randperm(4)  # the shuffle momentum_keys drew
        expected = [torch.zeros_like(k) for k in keys]
        for m in model.momentum_encoder.modules():
            if isinstance(m, SplitBatchNorm):
                m.num_splits = 1  # a part alone is one plain batch
        for part in perm.view(2, 2):  # each emulated GPU's images
            # encoded alone: its own batch statistics
            for lvl, k in enumerate(encode(model.momentum_encoder.module,
                                           img[part], boxes[part])):
                expected[lvl][part] = nn.functional.normalize(k, dim=1)
    for k, e in zip(keys, expected):
        torch.testing.assert_close(k, e, rtol=1e-5, atol=1e-5)
