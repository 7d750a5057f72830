# Copyright (c) mmselfdet contributors. All rights reserved.
"""Kill and resume: a training process SIGKILLed mid-run resumes with
``--resume`` and continues exactly as an uninterrupted run with the same
seed (losses, LR, a stateful hook, model RNG draws, final weights)."""
import os.path as osp
import subprocess
import sys

import torch

from ..utils import REPO, write_random_images
from .helpers import env, free_port, reliability_config, scalars

STATEFUL = "custom_hooks = [dict(type='TestStatefulHook')%s]\n"
KILL = ", dict(type='TestFaultHook', action='kill', at_iter=6)"


def _train(cfg, *args):
    return subprocess.run(
        [sys.executable, 'tools/train.py', cfg] + list(args), cwd=REPO,
        capture_output=True, text=True, env=env(), timeout=600)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    imgs = write_random_images(str(tmp_path / 'imgs'), n=16)
    # 16 images / batch 4: the 8 iterations cross two data epochs
    ref_cfg = reliability_config(imgs, str(tmp_path / 'ref'), num_workers=1,
                                 extra=STATEFUL % '')
    res = _train(ref_cfg)
    assert res.returncode == 0, res.stderr[-3000:]

    work = str(tmp_path / 'killed')
    kill_cfg = reliability_config(imgs, work, num_workers=1,
                                  extra=STATEFUL % KILL)
    res = _train(kill_cfg)
    assert res.returncode == -9, (res.returncode, res.stderr[-3000:])
    # killed after iteration 6; the latest checkpoint is iteration 4
    assert not osp.exists(osp.join(work, 'iter_8.pth'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_4.pth')
    # (the kill comes before iteration 6 is logged)
    assert sorted(scalars(work)) == list(range(1, 6))

    resume_cfg = reliability_config(imgs, work, num_workers=1,
                                    extra=STATEFUL % '')
    res = _train(resume_cfg, '--resume')
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 4' in res.stdout + res.stderr

    ref, resumed = scalars(str(tmp_path / 'ref')), scalars(work)
    assert sorted(resumed) == list(range(1, 9))
    for it in range(1, 9):
        for key in ('loss', 'lr', 'contrast_acc', 'hook_count',
                    'rng_probe'):
            # tolerance 1e-6 (absolute); on CPU the runs are bit-identical
            assert abs(ref[it][key] - resumed[it][key]) <= 1e-6, \
                (it, key, ref[it][key], resumed[it][key])
    assert resumed[8]['hook_count'] == 8

    a = torch.load(osp.join(str(tmp_path / 'ref'), 'iter_8.pth'))
    b = torch.load(osp.join(work, 'iter_8.pth'))
    for k, v in a['state_dict'].items():  # queue, pointer, momentum encoder
        assert torch.allclose(v.float(), b['state_dict'][k].float(),
                              atol=1e-6), k
    mom_a = a['optimizer']['state']
    mom_b = b['optimizer']['state']
    assert mom_a.keys() == mom_b.keys()
    for k in mom_a:
        assert torch.allclose(mom_a[k]['momentum_buffer'],
                              mom_b[k]['momentum_buffer'], atol=1e-6)


def test_two_process_resume_restores_every_rank(tmp_path):
    """2 CPU processes: a run stopped at iteration 2 and resumed to 4 gives
    the losses, weights and RNG draws of an uninterrupted 4-iteration run;
    the checkpoint holds both ranks' RNG states."""
    imgs = write_random_images(str(tmp_path / 'imgs'), n=16)

    def dist_train(work, max_iters, *args):
        cfg = reliability_config(imgs, work, max_iters=4, ckpt_interval=2,
                                 num_workers=1, extra=STATEFUL % '')
        res = subprocess.run(
            ['bash', 'tools/dist_train.sh', cfg, '2', '--cfg-options',
             'train_dataloader.batch_size=2', f'train_cfg.max_iters='
             f'{max_iters}'] + list(args), cwd=REPO, capture_output=True,
            text=True, env=dict(env(), PORT=str(free_port())), timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]

    ref, work = str(tmp_path / 'ref'), str(tmp_path / 'resumed')
    dist_train(ref, 4)
    dist_train(work, 2)  # stops after the checkpoint at 2 (same schedule)
    assert len(torch.load(osp.join(work, 'iter_2.pth'))['rng_states']) == 2
    dist_train(work, 4, '--resume')
    a, b = scalars(ref), scalars(work)
    for it in (3, 4):
        for key in ('loss', 'lr', 'rng_probe', 'hook_count'):
            assert abs(a[it][key] - b[it][key]) <= 1e-6, (it, key)
    sa = torch.load(osp.join(ref, 'iter_4.pth'))['state_dict']
    sb = torch.load(osp.join(work, 'iter_4.pth'))['state_dict']
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k

