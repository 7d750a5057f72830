# Copyright (c) mmselfdet contributors. All rights reserved.
"""What the COCO configs of DETR pretraining really train
(configs/simdetr/, configs/benchmarks/detr-pretrain/): SimDETR from
scratch, the DETReg-style baseline's frozen backbone and its switch, and the
low-data fine-tuning schedule of DETReg's semi-supervised protocol. The R50
detectors are built and stepped once on two 64-px images."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmselfdet.registry import MODELS
from ..utils import REPO, load_tool

SIMDETR = osp.join(REPO, 'configs', 'simdetr')
DETREG = osp.join(SIMDETR, 'detreg-ss_deformable-detr_r50_16xb2-50e_coco.py')
DETREG_TRAIN = osp.join(
    SIMDETR, 'detreg-ss-trainbackbone_deformable-detr_r50_16xb2-50e_coco.py')
SCRATCH = osp.join(SIMDETR,
                   'simdetr_deformable-detr_r50-scratch_16xb2-50e_coco.py')


def _step(cfg):
    """One optimiser step of ``cfg``'s detector as the runner builds it
    (model in train mode, the config's optim wrapper with its
    paramwise_cfg); returns the state dicts before and after, the wrapper
    and the model. The backbone is the config's (random weights, BN
    statistics of the batch instead of its checkpoint); the transformer is
    cut to one encoder and one decoder layer and 20 queries (CPU time)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(num_queries=20)
    model_cfg.encoder.num_layers = model_cfg.decoder.num_layers = 1
    model_cfg.backbone.init_cfg = None  # no checkpoint file here
    model = MODELS.build(model_cfg)
    model.init_weights()  # (DeformableDETR's level_embed starts uninit)
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    samples = []
    for _ in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(64, 64),
                                        ori_shape=(64, 64),
                                        scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 60., 50.]]),
            labels=torch.zeros(2, dtype=torch.long))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)
    data = model.data_preprocessor(data, True)
    # statistics of another batch: a BN in train mode then visibly moves
    _calibrate_bn(model.backbone, 0.5 * torch.randn_like(data['inputs']))
    model.train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    optim.update_params(loss)
    return before, model.state_dict(), optim, model


@torch.no_grad()
def _calibrate_bn(backbone, inputs):
    """Give every BN a checkpoint's look: weight 1 (mmdet zero-inits the
    last BN of each block, which would cut the residual branches off the
    gradient) and the running statistics of ``inputs`` (a random-init
    ResNet with BN at its initial statistics in eval mode overflows).
    Restores each BN's momentum; :meth:`train` restores the modes."""
    bns = [m for m in backbone.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.weight.fill_(1.0)
        m.train()
        m.momentum = None  # cumulative average: the batch's statistics
    backbone(inputs)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


def _changed(before, after, prefix):
    return sorted(k for k in before if k.startswith(prefix)
                  and not torch.equal(before[k], after[k]))


def _lr_of(optim, model, name):
    param = dict(model.named_parameters())[name]
    lrs = {g['lr'] for g in optim.optimizer.param_groups
           if any(p is param for p in g['params'])}
    assert len(lrs) == 1, name
    return lrs.pop()


def test_detreg_baseline_freezes_its_backbone_like_detreg():
    """DETReg pretrains with --lr_backbone 0 (configs/DETReg_top30_*.sh):
    no backbone parameter and no BN statistic may move (FrozenBN)."""
    cfg = Config.fromfile(DETREG)
    before, after, optim, model = _step(cfg)
    assert _changed(before, after, 'backbone.') == []
    # the step itself happened: the transformer and the heads moved
    assert _changed(before, after, 'encoder.')
    assert _changed(before, after, 'bbox_head.')
    # no backbone parameter takes gradients, every BN is in eval mode
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(m.training for m in model.backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


def test_detreg_switch_trains_the_backbone_as_detreg_fine_tuning():
    """The switch trains layer2-4 at 0.1x the lr with frozen BN, as
    DETReg's train_backbone (lr_backbone > 0, FrozenBatchNorm2d, stem and
    layer1 frozen)."""
    cfg = Config.fromfile(DETREG_TRAIN)
    before, after, optim, model = _step(cfg)
    moved = _changed(before, after, 'backbone.')
    for stage in ('layer2', 'layer3', 'layer4'):
        assert f'backbone.{stage}.0.conv1.weight' in moved, stage
    assert not [k for k in moved if not k.startswith(
        ('backbone.layer2', 'backbone.layer3', 'backbone.layer4'))]
    assert not [k for k in moved if '.bn' in k or 'downsample.1' in k]
    base = cfg.optim_wrapper.optimizer.lr
    assert _lr_of(optim, model, 'backbone.layer3.0.conv1.weight') == \
        pytest.approx(0.1 * base)


def _weight_sources(obj, where='cfg'):
    """Every place of a config dict that would load weights: an init of
    type 'Pretrained', or a ``checkpoint`` / ``pretrained`` / ``load_from``
    / ``*_checkpoint`` file name."""
    found = []
    if isinstance(obj, dict):
        if obj.get('type') == 'Pretrained':
            found.append(where)
        for k, v in obj.items():
            if (k in ('checkpoint', 'pretrained', 'load_from')
                    or str(k).endswith('_checkpoint')) and isinstance(
                        v, str) and v:  # (not the CheckpointHook dict)
                found.append(f'{where}.{k}')
            found += _weight_sources(v, f'{where}.{k}')
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found += _weight_sources(v, f'{where}[{i}]')
    return found


def test_simdetr_scratch_needs_no_pretrained_weights_and_trains_its_backbone():
    cfg = Config.fromfile(SCRATCH)
    bb = cfg.model.backbone
    # 2 images per GPU: batch statistics across GPUs (or GN), trained
    assert bb.norm_cfg.type in ('SyncBN', 'GN') and bb.norm_cfg.requires_grad
    assert bb.frozen_stages == -1 and bb.norm_eval is False
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 1.0
    # no pretrained weights anywhere: model inits, load_from, variables
    assert _weight_sources(cfg.to_dict()) == []
    # stage A of this config (its training labels come from stage B over
    # stage A's output) runs a random-init backbone: no --checkpoint
    a = load_tool('tools/detr_pretrain/make_proposals.py').parse_args(
        cfg.stage_a_args)
    b = load_tool('tools/detr_pretrain/cluster_pseudo_labels.py').parse_args(
        cfg.stage_b_args)
    assert a.checkpoint is None
    assert b.proposals == a.out
    ds = cfg.train_dataloader.dataset
    assert b.out == osp.join(ds.data_root, ds.ann_file)
    assert b.num_classes == cfg.model.bbox_head.num_classes
    # built as the runner builds it: SyncBN, the backbone at the full lr,
    # every backbone stage and BN statistic trains
    before, after, optim, model = _step(cfg)
    assert all(isinstance(m, torch.nn.SyncBatchNorm)
               for m in model.backbone.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    base = cfg.optim_wrapper.optimizer.lr
    for name in ('backbone.conv1.weight', 'backbone.layer1.0.conv1.weight',
                 'backbone.layer4.2.conv3.weight'):
        assert _lr_of(optim, model, name) == pytest.approx(base), name
    moved = _changed(before, after, 'backbone.')
    for key in ('conv1.weight', 'bn1.weight', 'layer1.0.conv1.weight'):
        assert f'backbone.{key}' in moved, key
    for key in ('bn1.running_mean', 'layer4.2.bn3.running_var'):
        delta = (after[f'backbone.{key}'] - before[f'backbone.{key}']).abs()
        assert delta.max() > 1e-3, key  # BN statistics train


# DETReg's semi-supervised runs (its configs/DETReg_fine_tune_{p}pct_coco.sh
# and README): --epochs per split, 8 GPUs x --batch_size 3, lr_drop = epochs
DETREG_EPOCHS = {1: 2000, 2: 1000, 5: 500, 10: 400}
COCO_TRAIN2017_IMAGES = 118287
LOW_DATA = {p: osp.join(REPO, 'configs', 'benchmarks', 'detr-pretrain',
                        f'deformable-detr_r50_8xb3-{e}e_coco-{p}pct.py')
            for p, e in DETREG_EPOCHS.items()}


@pytest.mark.parametrize('percent', sorted(DETREG_EPOCHS))
def test_low_data_schedule_is_detregs_semi_supervised_protocol(percent):
    cfg = Config.fromfile(LOW_DATA[percent])
    # the split: tools/make_low_data_splits.py, the size DETReg's
    # filter_pct draws (round(N * p))
    splits = load_tool('tools/make_low_data_splits.py')
    n = len(splits.sample_ids(range(COCO_TRAIN2017_IMAGES), percent, 0))
    assert n == round(COCO_TRAIN2017_IMAGES * percent / 100)
    # DETReg: DistributedSampler over 8 GPUs (ceil(n / 8) images each),
    # BatchSampler(3, drop_last=True)
    per_gpu = -(-n // 8)
    iters_per_epoch = per_gpu // 3
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == DETREG_EPOCHS[percent] * \
        iters_per_epoch
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert cfg.train_dataloader.dataset.ann_file == \
        f'low_data/instances_train2017_{percent}pct_seed0.json'
    # StepLR(lr_drop=epochs) never fires within the run: constant lr
    assert not [s for s in cfg.param_scheduler if s.get('gamma', 1) != 1
                and min(s.get('milestones', [0])) < cfg.train_cfg.max_iters]
    # the last evaluation is the last iteration (the number reported)
    assert cfg.train_cfg.max_iters % cfg.train_cfg.val_interval == 0
    # DETReg's optimiser: AdamW 2e-4, wd 1e-4, clip 0.1, backbone and
    # deformable offsets / reference points at 0.1x
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert {k: v.lr_mult for k, v in keys.items()} == {
        'backbone': 0.1, 'sampling_offsets': 0.1, 'reference_points': 0.1}
