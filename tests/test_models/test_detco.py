# Copyright (c) mmselfdet contributors. All rights reserved.
import copy
import os.path as osp

import pytest
import torch

from mmselfdet.registry import MODELS
from .helpers import finite, params_without_grad

G, P = 32, 16  # global view size, patch size (tile = 3 * P)


def tiny_detco(**kw):
    cfg = dict(
        type='DetCo', queue_len=16, feat_dim=8, momentum=0.01,
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='MultiStageProjector', in_channels=(64, 128, 256, 512),
                  hid_channels=32, out_channels=8),
        head=dict(type='QueueContrastiveHead', temperature=0.2))
    cfg.update(kw)
    return cfg


def batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)

    def imgs(size):
        return [torch.randint(0, 255, (3, size, size), generator=g,
                              dtype=torch.uint8) for _ in range(n)]
    return {'inputs': {'view1': imgs(G), 'view2': imgs(G),
                       'local1': imgs(3 * P), 'local2': imgs(3 * P)},
            'data_samples': None}


def test_detco_two_steps_gradients_and_queues():
    torch.manual_seed(0)
    model = MODELS.build(tiny_detco())
    model.init_weights()
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.05)
    for step in range(2):
        data = model.data_preprocessor(batch(seed=step), True)
        losses = model(**data, mode='loss')
        assert finite(losses)
        names = sorted(k for k in losses if 'loss' in k)
        assert len(names) == 12  # 4 stages x (gg, ll, lg)
        total = sum(losses[k] for k in names)
        opt.zero_grad()
        total.backward()
        if step == 0:
            assert params_without_grad(model) == []
        opt.step()
    assert model.global_queue.ptr.tolist() == [4] * 4
    assert model.local_queue.ptr.tolist() == [4] * 4


def test_stage_weights_scale_losses():
    torch.manual_seed(0)
    model = MODELS.build(tiny_detco(shuffle_bn=False))
    model.eval()
    data = model.data_preprocessor(batch(), False)
    losses = model(**data, mode='loss')
    # weighted chance levels reveal the weights: w_s * ln(1 + K)
    for s, w in zip(range(2, 6), (0.1, 0.4, 0.7, 1.0)):
        chance = float(losses[f'res{s}_gg_contrast_chance'])
        assert chance == pytest.approx(w * torch.log(torch.tensor(17.)).item(),
                                       rel=1e-5)


def test_each_loss_responds_to_its_own_inputs():
    torch.manual_seed(0)
    base_model = MODELS.build(tiny_detco(shuffle_bn=False))
    base_model.init_weights()
    base_model.eval()  # BN running stats: samples are independent

    def losses_for(raw):
        model = copy.deepcopy(base_model)  # same queues and key encoder
        data = model.data_preprocessor(raw, False)
        out = model(**data, mode='loss')
        return {k: float(v) for k, v in out.items() if 'loss' in k}

    ref = losses_for(batch())

    def changed(view):
        raw = batch()
        raw['inputs'][view] = batch(seed=99)['inputs'][view]
        new = losses_for(raw)
        return {k.split('_')[1] for k in ref if abs(new[k] - ref[k]) > 1e-6}

    assert changed('local2') == {'ll'}
    assert changed('view2') == {'gg', 'lg'}
    assert changed('local1') == {'ll', 'lg'}
    assert changed('view1') == {'gg'}


def test_configs_augment_each_patch():
    """DetCo's configs put the pixel augmentations in JigsawPatches'
    patch_pipeline (per patch), none on the tile."""
    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'detco')
    for name in ('detco_r50_8xb32-coslr-200e_in1k.py',
                 'detco_r18_1xb32-60it_toy.py'):
        cfg = Config.fromfile(osp.join(root, name))
        pipeline = cfg.train_dataloader.dataset.pipeline
        jigsaws = [t for t in pipeline if t['type'] == 'JigsawPatches']
        assert len(jigsaws) == 2
        for t in jigsaws:
            assert [a['type'] for a in t['patch_pipeline']] == [
                'ColorJitter', 'RandomGrayscale', 'GaussianBlur']
        packs = pipeline[-1]['pipelines']
        for view in ('local1', 'local2'):
            assert [a['type'] for a in packs[view]] == ['PackViewInputs']


def _linear_dims(mlp):
    return [(m.in_features, m.out_features) for m in mlp.modules()
            if isinstance(m, torch.nn.Linear)]


def test_local_mlp_hidden_width_is_the_stage_width():
    """Default: local MLP 9*C -> C -> D per stage, global C -> hid -> D;
    hid_channels / local_hid_channels switch either to one width."""
    stages = (64, 128, 256, 512)
    neck = MODELS.build(dict(type='MultiStageProjector', in_channels=stages,
                             hid_channels=32, out_channels=8))
    for c, glob, loc in zip(stages, neck.global_mlps, neck.local_mlps):
        assert _linear_dims(glob) == [(c, 32), (32, 8)]
        assert _linear_dims(loc) == [(9 * c, c), (c, 8)]
    same = MODELS.build(dict(type='MultiStageProjector', in_channels=stages,
                             hid_channels=32, out_channels=8,
                             local_hid_channels=None))
    assert [_linear_dims(m)[0][1] for m in same.local_mlps] == [32] * 4
    per = MODELS.build(dict(type='MultiStageProjector', in_channels=stages,
                            hid_channels='stage', out_channels=8,
                            local_hid_channels=(4, 5, 6, 7)))
    assert [_linear_dims(m)[0][1] for m in per.global_mlps] == list(stages)
    assert [_linear_dims(m)[0][1] for m in per.local_mlps] == [4, 5, 6, 7]
    with pytest.raises(ValueError, match='local_hid_channels'):
        MODELS.build(dict(type='MultiStageProjector', in_channels=stages,
                          local_hid_channels=(4, 5)))


def test_paper_config_projector_widths():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..',
                                   'configs', 'detco',
                                   'detco_r50_8xb32-coslr-200e_in1k.py'))
    neck = MODELS.build(cfg.model.neck)
    stages = (256, 512, 1024, 2048)
    assert [_linear_dims(m) for m in neck.local_mlps] == [
        [(9 * c, c), (c, 128)] for c in stages]
    assert [_linear_dims(m) for m in neck.global_mlps] == [
        [(c, 2048), (2048, 128)] for c in stages]
