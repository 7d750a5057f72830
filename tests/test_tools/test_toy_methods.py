# Copyright (c) mmselfdet contributors. All rights reserved.
"""Every toy pretraining config trains for real through tools/train.py and
through tools/dist_train.sh with 2 CPU processes (a few steps on a tiny toy
set), and its checkpoint exports to mmdet's RetinaNet."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ..utils import REPO

# the `*-gpuaug` toy configs differ from their base only in where the pixel
# augmentations run: tests/test_configs_gpuaug.py trains a step of each in
# process; one of them (MoCo v2) also runs here through the tools
TOY_CONFIGS = sorted(
    c for c in glob.glob(osp.join(REPO, 'configs', '*', '*_toy.py'))
    if '/benchmarks/' not in c
    and ('-gpuaug' not in c or 'mocov2-gpuaug' in osp.basename(c)))


def _make_proposals(root, rel):
    """Selective search on the test toy set, once (the SS-based configs)."""
    out = osp.join(root, rel)
    if not osp.isfile(out):
        res = subprocess.run(
            [sys.executable, 'tools/generate_proposals.py',
             osp.join(root, 'unlabeled'), '--ann-file',
             osp.join(root, 'annotations', 'unlabeled.json'), '--out', out,
             '--mode', 'fast', '--max-side', '96'], cwd=REPO, capture_output=True, text=True,
            env=_env())
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _make_pseudo_labels(root, rel, num_classes):
    """DETR pretraining stages A + B on the test toy set, once (the SimDETR
    toy config trains on their COCO json)."""
    out = osp.join(root, rel)
    if osp.isfile(out):
        return
    props = osp.join(osp.dirname(out), 'feature_proposals.json')
    for cmd in ([osp.join('tools', 'detr_pretrain', 'make_proposals.py'),
                 osp.join(root, 'annotations', 'unlabeled.json'),
                 '--img-root', osp.join(root, 'unlabeled'), '--arch',
                 'resnet18', '--stage', '1', '--img-scale', '64', '64',
                 '--out', props, '--workers', '0', '--no-progress',
                 '--device', 'cpu'],
                [osp.join('tools', 'detr_pretrain', 'cluster_pseudo_labels.py'),
                 props, '--num-classes', str(num_classes), '--out', out]):
        res = subprocess.run([sys.executable] + cmd, cwd=REPO,
                             capture_output=True, text=True, env=_env())
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _data_opts(cfg_path, root, batch):
    from mmengine.config import Config
    cfg = Config.fromfile(cfg_path)
    ds = 'train_dataloader.dataset'
    if cfg.train_dataloader.dataset.type == 'MultiImageMixDataset':
        ds += '.dataset'
    if cfg.train_dataloader.dataset.get('proposal_file'):
        _make_proposals(root, cfg.train_dataloader.dataset.proposal_file)
    if str(cfg.train_dataloader.dataset.get('ann_file')).startswith(
            'simdetr/'):
        _make_pseudo_labels(root, cfg.train_dataloader.dataset.ann_file,
                            cfg.model.bbox_head.num_classes)
    return [f'{ds}.data_root={root}/', f'train_dataloader.batch_size={batch}',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'param_scheduler=[]']


def _env():
    return dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')


@pytest.mark.parametrize('cfg', TOY_CONFIGS,
                         ids=[osp.basename(c) for c in TOY_CONFIGS])
def test_toy_config_trains_and_exports(cfg, toy_root, tmp_path):
    work = str(tmp_path / 'work')
    res = subprocess.run(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', work,
         '--cfg-options'] + _data_opts(cfg, toy_root, 4),
        cwd=REPO, capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    logs = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    recs = [json.loads(ln) for ln in open(logs[0])]
    losses = [r['loss'] for r in recs if 'loss' in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    out = str(tmp_path / 'exported.pth')
    # the toy downstream detector: RetinaNet R18 for the backbone methods;
    # the 5-class toy Deformable DETR for DETR pretraining (whole detector
    # minus the class layer)
    export = ['--parts', 'backbone.', '--downstream-config',
              'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py']
    if '/simdetr/' in cfg:
        export = ['--downstream-config', 'configs/simdetr/'
                  'deformable-detr_r18_1xb8-300it_toy-5cls.py']
    res = subprocess.run(
        [sys.executable, 'tools/export_checkpoint.py',
         osp.join(work, 'iter_2.pth'), out] + export,
        cwd=REPO, capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    n = len(torch.load(out)['state_dict'])
    assert f'matched {n}/{n} ' in res.stdout


@pytest.mark.parametrize('cfg', TOY_CONFIGS,
                         ids=[osp.basename(c) for c in TOY_CONFIGS])
def test_toy_config_dist_train_two_cpu_processes(cfg, toy_root, tmp_path):
    from ..test_reliability.helpers import free_port
    work = str(tmp_path / 'work')
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work,
         '--cfg-options'] + _data_opts(cfg, toy_root, 2),
        cwd=REPO, capture_output=True, text=True,
        env=dict(_env(), PORT=str(free_port())))
    # a rank's own traceback comes before torchrun's summary in stderr
    first_tb = res.stderr.find('Traceback (most recent call last)')
    assert res.returncode == 0, (res.stderr[first_tb:][:3000] if first_tb
                                 >= 0 else '') + res.stderr[-3000:]
    # both ranks freed the gloo group before exiting (mmselfdet.engine.dist
    # finish_launch warns otherwise) and none aborted at exit
    assert 'still alive after destroy_process_group' not in res.stderr, \
        res.stderr[-3000:]
    assert 'terminate called' not in res.stderr, res.stderr[-3000:]
    state = torch.load(osp.join(work, 'iter_2.pth'))['state_dict']
    ptrs = {k: v for k, v in state.items() if k.endswith('queue.ptr')}
    for k, ptr in ptrs.items():
        # 2 steps x 2 ranks x batch 2 keys in every queue
        assert ptr.tolist() == [8 % int(state[k[:-3] + 'buffer'].shape[1])] \
            * len(ptr), k
