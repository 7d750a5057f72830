# Copyright (c) mmselfdet contributors. All rights reserved.
"""Controls of the toy benchmark's diagnosis (issue 17, docs/results.md).

Same protocol as the ``cpu`` preset's fine-tuning (RetinaNet R18 toy, the
fixed 10 % split of toy ``train``, 180 steps, seeds 0-2), with a backbone
that is not a self-supervised export:

* ``zi0``: random init with ``zero_init_residual=False`` (the init the
  former pretraining configs started from) and its probe;
* ``oracle``: a supervised backbone -- RetinaNet trained 250 steps on the
  toy ``unlabeled`` split's ground truth (labels the pretraining methods
  never see), backbone only -- and its probe: can this protocol reward good
  backbone features at all?
* ``sweep``: one MoCo v2 pretraining of 1200 steps from the fair init
  (the ``cpu`` preset's 300 steps x 4, cosine schedule over the 1200),
  checkpoints every 300 steps; per checkpoint the loss beside its chance
  level, the probe and the collapse statistics; the 1200-step export is
  fine-tuned with seeds 0-2: does the object k-NN come back once the
  scene-level features saturate?
* ``sweep-insloc``: the same for InsLoc (FPN), whose 300 steps stayed at
  its chance level: does it learn with 4x the steps?

Usage::

    python tools/benchmarks/toy_controls.py zi0 oracle sweep \
        [--work-dir work_dirs/diag17] [--data-root data/toy]

Resumable (a finished unit has its ``result.json``); results are read from
the units' files, as the toy benchmark does.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmselfdet.benchmarks.units import (coco_maps,  # noqa: E402
                                        finetune_config, loss_vs_chance,
                                        pretrain_config, read_result,
                                        run_finetune, run_tool,
                                        scalar_records, write_result)

DET = 'configs/benchmarks/retinanet_r18_fpn_1xb8-12e_toy.py'
SEEDS = (0, 1, 2)


def finetune(work, root, name, seed, load=None, extra=()):
    folder = f'{work}/finetune/{name}_s{seed}'
    if read_result(folder):
        return read_result(folder)
    return write_result(folder, run_finetune(
        folder, DET, root, root + '/low_data/train_10pct_seed0.json', 180,
        seed, load, extra=extra))


def probe(work, name, ckpt, extra=()):
    folder = f'{work}/probe/{name}'
    if read_result(folder):
        return read_result(folder)
    out = folder + '/probe.json'
    run_tool(['tools/benchmarks/probe.py', ckpt, '--depth', '18', '--out',
              out] + list(extra), folder + '/log.txt')
    with open(out) as f:
        r = json.load(f)
    return write_result(folder, dict(knn=r['knn']['top1'],
                                     linear=r['linear']['top1'],
                                     collapse=r['collapse']))


def oracle_backbone(work, root):
    """Supervised RetinaNet on toy ``unlabeled`` ground truth; returns the
    path of its backbone-only checkpoint."""
    import torch
    folder = f'{work}/oracle'
    dst = folder + '/backbone.pth'
    if osp.isfile(dst):
        return dst
    cfg = finetune_config(DET, folder + '/config.py', root,
                          root + '/annotations/unlabeled.json', 250, 0,
                          train_img='unlabeled/')
    run_tool(['tools/train.py', cfg, '--work-dir', folder],
             folder + '/log.txt')
    from mmselfdet.export.transfer import load_checkpoint_file
    sd = load_checkpoint_file(folder + '/iter_250.pth')['state_dict']
    torch.save(dict(state_dict={k: v for k, v in sd.items()
                                if k.startswith('backbone.')}, meta={}), dst)
    write_result(folder, dict(coco_maps(folder)))
    return dst


def sweep_checkpoints(work, root, method, iters=1200, every=300):
    """One long pretraining of ``method`` with a checkpoint every ``every``
    steps; returns {step: checkpoint path}."""
    from mmselfdet.methods import METHODS
    folder = f'{work}/sweep_{method}'
    steps = list(range(every, iters + 1, every))
    ckpts = {k: f'{folder}/iter_{k}.pth' for k in steps}
    if not all(osp.isfile(c) for c in ckpts.values()):
        cfg = pretrain_config(METHODS[method].toy_config,
                              folder + '/config.py', root, iters, True)
        run_tool(['tools/train.py', cfg, '--work-dir', folder,
                  '--cfg-options', f'default_hooks.checkpoint.interval={every}',
                  'default_hooks.checkpoint.max_keep_ckpts=-1'],
                 folder + '/log.txt')
    return ckpts


def sweep(work, root, method):
    ckpts = sweep_checkpoints(work, root, method)
    recs = scalar_records(f'{work}/sweep_{method}')
    rows = {}
    for k, ckpt in ckpts.items():
        folder = f'{work}/sweep_export/{method}/{k}'
        out = folder + '/exported.pth'
        if not osp.isfile(out):
            run_tool(['tools/export_checkpoint.py', ckpt, out,
                      '--downstream-config', DET, '--parts', 'backbone.'],
                     folder + '/log.txt')
        # the loss over the last 40 steps before the checkpoint (2 records)
        window = [r for r in recs if 'loss' in r and k - 40 < r['step'] <= k]
        lc = loss_vs_chance(window, tail=1.0)
        pr = probe(work, f'sweep_{method}_{k}', out,
                   ['--zero-init-residual', 'true'])
        rows[k] = dict(step=k, loss=lc['loss'], chance=lc['chance'], **pr)
        print('sweep', method, rows[k], flush=True)
    last = max(ckpts)
    fts = [finetune(work, root, f'sweep_{method}_{last}', s,
                    load=f'{work}/sweep_export/{method}/{last}/exported.pth')
           for s in SEEDS]
    print('sweep fine-tune', method, last, fts, flush=True)
    write_result(f'{work}/sweep/{method}',
                 dict(rows=list(rows.values()), finetune=fts))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('controls', nargs='+',
                   choices=['zi0', 'oracle', 'sweep', 'sweep-insloc'])
    p.add_argument('--work-dir', default='work_dirs/diag17')
    p.add_argument('--data-root', default='data/toy')
    args = p.parse_args(argv)
    work, root = osp.abspath(args.work_dir), osp.abspath(args.data_root)
    if not osp.isfile(root + '/low_data/train_10pct_seed0.json'):
        sys.exit(f'{root}/low_data/ is missing: run the toy benchmark '
                 '(bash tools/quickstart.sh) first, it writes the split')
    for c in args.controls:
        if c == 'zi0':
            for s in SEEDS:
                print('zi0', s, finetune(work, root, 'random_zi0', s, extra=[
                    'model = dict(backbone=dict(zero_init_residual=False))'
                ]), flush=True)
            print(probe(work, 'random_zi0_s0', 'random',
                        ['--zero-init-residual', 'false']), flush=True)
        if c == 'oracle':
            o = oracle_backbone(work, root)
            print('oracle probe', probe(work, 'oracle', o), flush=True)
            for s in SEEDS:
                print('oracle', s, finetune(work, root, 'oracle', s, load=o),
                      flush=True)
        if c == 'sweep':
            sweep(work, root, 'mocov2')
        if c == 'sweep-insloc':
            sweep(work, root, 'insloc')


if __name__ == '__main__':
    main()
