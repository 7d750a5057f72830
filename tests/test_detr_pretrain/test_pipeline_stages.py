# Copyright (c) mmselfdet contributors. All rights reserved.
"""Stages A-D on tiny toy data: tools/detr_pretrain/make_proposals.py
(resume), cluster_pseudo_labels.py, and SelfTrainingLoop
(mmselfdet/simdetr/self_training.py) inside a real Runner with resume."""
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.hooks import Hook

from ..utils import REPO

TOY_CFG = osp.join(REPO, 'configs', 'simdetr',
                   'simdetr_deformable-detr_r18_1xb8-300it_toy.py')
FT_CFG = osp.join(REPO, 'configs', 'simdetr',
                  'deformable-detr_r18_1xb8-300it_toy-5cls.py')


def _tool(name):
    modname = f'_detr_tool_{name}'
    spec = importlib.util.spec_from_file_location(
        modname, osp.join(REPO, 'tools', 'detr_pretrain', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def _stage_a_args(toy_root, out):
    return [osp.join(toy_root, 'annotations', 'train.json'), '--img-root',
            osp.join(toy_root, 'train'), '--arch', 'resnet18', '--stage', '1',
            '--img-scale', '64', '64', '--out', out, '--shard-size', '8',
            '--batch-size', '4', '--workers', '0', '--no-progress',
            '--device', 'cpu']


@pytest.fixture(scope='module')
def pseudo_json(toy_root, tmp_path_factory):
    d = str(tmp_path_factory.mktemp('simdetr'))
    props = osp.join(d, 'props.json')
    stats = _tool('make_proposals').main(_stage_a_args(toy_root, props))
    assert stats['images'] == 16 and stats['proposals'] > 16
    out = osp.join(d, 'pseudo_k4.json')
    _tool('cluster_pseudo_labels').main([props, '--num-classes', '4',
                                         '--out', out])
    return out


def test_make_proposals_resumes_from_shards(pseudo_json, toy_root, capsys):
    d = osp.dirname(pseudo_json)
    props = osp.join(d, 'props.json')
    before = open(props).read()
    feats_before = open(osp.join(d, 'props.features.npy'), 'rb').read()
    os.remove(osp.join(d, 'props.shards', '00001.json'))
    _tool('make_proposals').main(_stage_a_args(toy_root, props))
    assert '1 done, 1 to do' in capsys.readouterr().out
    assert open(props).read() == before
    assert open(osp.join(d, 'props.features.npy'), 'rb').read() == \
        feats_before
    # resuming with other settings would mix two kinds of shards: refused
    with pytest.raises(SystemExit, match=r'settings\.json.*proposer'):
        _tool('make_proposals').main(
            _stage_a_args(toy_root, props) + ['--smooth', '3'])
    assert open(props).read() == before


def _cfg(pseudo_json, toy_root, work_dir, max_iters):
    from mmengine.config import Config
    cfg = Config.fromfile(TOY_CFG)
    cfg.work_dir = work_dir
    num_classes = 4
    classes = tuple(f'cluster_{k:03d}' for k in range(num_classes))
    cfg.model.bbox_head.num_classes = num_classes
    cfg.model.test_cfg.max_per_img = 5
    ds = cfg.train_dataloader.dataset
    ds.update(ann_file=pseudo_json, data_root='', metainfo=dict(
        classes=classes), data_prefix=dict(img=osp.join(toy_root, 'train/')))
    label_ds = cfg.train_cfg.label_dataloader.dataset
    for t in ds.pipeline + label_ds.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (64, 64)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.update(interval=3, max_keep_ckpts=3)
    cfg.default_hooks.logger.interval = 1
    cfg.train_cfg.update(interval=2, num_rounds=3, max_per_img=3)
    cfg.train_cfg.label_dataloader.batch_size = 8
    return cfg


class _BatchProbe(Hook):
    """Records (image id, number of boxes) of every training batch."""

    def __init__(self):
        self.seen, self.by_iter = {}, {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        seen = [(s.metainfo['img_id'], len(s.gt_instances))
                for s in data_batch['data_samples']]
        self.seen[batch_idx] = seen  # batch_idx: the iteration (iter loop)
        self.by_iter[runner.iter] = seen


def _boxes_per_image(path):
    """Boxes per image id that mmdet's CocoDataset keeps (w, h >= 1)."""
    obj = json.load(open(path))
    n = {im['id']: 0 for im in obj['images']}
    for a in obj['annotations']:
        if a['bbox'][2] >= 1 and a['bbox'][3] >= 1 and a['area'] > 0:
            n[a['image_id']] += 1
    return n


def _rounds(runner):
    from mmselfdet.simdetr import SelfTrainingLoop
    assert isinstance(runner.train_loop, SelfTrainingLoop)
    return runner.train_loop.rounds


def test_self_training_rounds_and_resume_mid_round(pseudo_json, toy_root,
                                                    tmp_path):
    from mmdet.datasets import CocoDataset
    from mmengine.runner import Runner
    torch.manual_seed(0)
    run1 = str(tmp_path / 'run1')
    # rounds start at iterations 2 and 4; two batches after each round
    # outrun what the old sampler had buffered
    runner = Runner.from_cfg(_cfg(pseudo_json, toy_root, run1, 5))
    probe = _BatchProbe()
    runner.register_hook(probe)
    runner.train()
    r1 = osp.join(run1, 'self_training', 'round_01.json')
    r2 = osp.join(run1, 'self_training', 'round_02.json')
    # every batch carries the boxes of its iteration's round: the rebuilt
    # dataloader serves the new json at once (no stale buffered batch)
    for it, label_file in ((0, pseudo_json), (1, pseudo_json), (2, r1),
                           (3, r1), (4, r2)):
        n_boxes = _boxes_per_image(label_file)
        assert probe.seen[it] and all(n == n_boxes[i]
                                      for i, n in probe.seen[it]), it
    assert _rounds(runner).round == 2 and runner.iter == 5
    assert runner.train_dataloader.dataset.ann_file == osp.join(
        run1, 'self_training', 'round_02.json')
    # the round's json is a COCO file mmdet loads, boxes on every image
    obj = json.load(open(r1))
    assert obj['info']['round'] == 1 and len(obj['images']) == 16
    assert {a['image_id'] for a in obj['annotations']} == {
        im['id'] for im in obj['images']}
    ds = CocoDataset(ann_file=r1, metainfo=dict(
        classes=tuple(c['name'] for c in obj['categories'])),
        data_prefix=dict(img=osp.join(toy_root, 'train/')),
        filter_cfg=dict(filter_empty_gt=False), pipeline=[])
    assert len(ds) == 16 and all(len(ds[i]['instances']) <= 3
                                 for i in range(16))
    ckpt = torch.load(osp.join(run1, 'iter_3.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['self_training'] == dict(round=1, ann_file=r1)

    # transfer: the whole detector except the class layer lands in the
    # 5-class toy fine-tuning config
    from mmselfdet.export.exporter import export_checkpoint
    rep = export_checkpoint(osp.join(run1, 'iter_3.pth'),
                            str(tmp_path / 'exp.pth'),
                            downstream_config=FT_CFG, log=lambda *a: None)
    assert rep['method'] == 'DeformableDETR' and len(rep['matched']) > 100
    assert not rep['unexpected'] and not rep['shape_mismatch']
    assert all(k.startswith('bbox_head.cls_branches.')
               for k in rep['missing'])
    exported = torch.load(str(tmp_path / 'exp.pth'), weights_only=True)
    sd = exported.get('state_dict', exported)
    assert not any('cls_branches' in k for k in sd)

    # resume mid-round 1 (iteration 3 of rounds at 2, 4): continues round 1
    # on round 1's labels and relabels only at iteration 4
    run2 = str(tmp_path / 'run2')
    cfg = _cfg(pseudo_json, toy_root, run2, 5)
    cfg.resume = True
    cfg.load_from = osp.join(run1, 'iter_3.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 5 and _rounds(runner).round == 2
    assert not osp.exists(osp.join(run2, 'self_training', 'round_01.json'))
    r2 = osp.join(run2, 'self_training', 'round_02.json')
    assert json.load(open(r2))['info']['previous'] == r1
    assert runner.train_dataloader.dataset.ann_file == r2


def test_browse_pseudo_labels_draws_png(pseudo_json, toy_root, tmp_path):
    props = osp.join(osp.dirname(pseudo_json), 'props.json')
    out = str(tmp_path / 'b.png')
    _tool('browse_pseudo_labels').main([
        props, pseudo_json, osp.join(toy_root, 'annotations', 'train.json'),
        '--img-root', osp.join(toy_root, 'train'), '--out', out, '--num', '2'])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(KeyError, match='neither'):
        bad = str(tmp_path / 'bad.json')
        json.dump(dict(images=[]), open(bad, 'w'))
        _tool('browse_pseudo_labels').main([bad, '--img-root', toy_root,
                                            '--out', out])


def test_epoch_loop_relabels_between_epochs(pseudo_json, toy_root, tmp_path):
    """SelfTrainingEpochLoop: epoch 0 trains on round 0, the loop relabels
    before epoch 1 and that epoch's batches carry round 1's boxes."""
    from mmengine.runner import Runner
    torch.manual_seed(0)
    work = str(tmp_path / 'ep')
    cfg = _cfg(pseudo_json, toy_root, work, 1)
    st = {k: v for k, v in cfg.train_cfg.items()
          if k not in ('type', 'max_iters')}
    st.update(interval=1, num_rounds=2)
    cfg.train_cfg = dict(type='SelfTrainingEpochLoop', max_epochs=2, **st)
    cfg.train_dataloader.update(batch_size=8, sampler=dict(
        type='DefaultSampler', shuffle=True))
    cfg.default_hooks.checkpoint.update(by_epoch=True, interval=1)
    cfg.log_processor = dict(by_epoch=True)
    runner = Runner.from_cfg(cfg)
    probe = _BatchProbe()
    runner.register_hook(probe)
    runner.train()
    r1 = osp.join(work, 'self_training', 'round_01.json')
    assert runner.train_loop.rounds.round == 1 and runner.epoch == 2
    assert runner.train_dataloader.dataset.ann_file == r1
    for it, label_file in ((0, pseudo_json), (1, pseudo_json), (0 + 2, r1),
                           (1 + 2, r1)):
        n_boxes = _boxes_per_image(label_file)
        seen = probe.by_iter[it]
        assert seen and all(n == n_boxes[i] for i, n in seen), it
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                      weights_only=True)
    # saved after epoch 0's hooks, before the relabelling of epoch 1
    assert ckpt['meta']['self_training']['round'] == 0
