# Copyright (c) mmselfdet contributors. All rights reserved.
"""SimDETR-style DETR pretraining on the toy data, stages A-D in one command,
then (``--finetune``) the downstream comparison.

Steps (each a subprocess running the user tool; logs in
``WORK_DIR/logs``):

1. toy data in ``WORK_DIR/data`` (``--toy-size``, default 400 200 100);
2. stage A: ``make_proposals.py`` over the ``unlabeled`` split;
3. stage B: ``cluster_pseudo_labels.py`` (K = ``--num-classes``);
4. stages C+D: ``tools/train.py`` on the pseudo-labels with the tiny
   Deformable DETR and ``SelfTrainingLoop`` (``--pretrain-iters``,
   ``--rounds``);
5. pseudo-label recall: stage A's boxes, round 0's labels and every
   self-training round's labels scored against the (otherwise unused)
   ground truth of the toy ``unlabeled`` split (AR@10 / AR@30);
6. with ``--finetune``: export (``tools/export_checkpoint.py``: whole
   detector minus the class layer), fine-tune on toy ``train`` from the
   export and from random init (``--finetune-iters``), COCO bbox AP on
   ``val``, table in ``WORK_DIR/results.md``.

A step whose output already exists is skipped (stage A resumes from its
shards), so an interrupted run continues where it stopped; ``--fresh``
deletes the work dir first.

Example::

    python tools/detr_pretrain/run_toy_pipeline.py --finetune
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN_CFG = 'configs/simdetr/simdetr_deformable-detr_r18_1xb8-300it_toy.py'
FINETUNE_CFG = 'configs/simdetr/deformable-detr_r18_1xb8-300it_toy-5cls.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/simdetr_toy')
    p.add_argument('--toy-size', nargs=3, type=int, default=[400, 200, 100],
                   metavar=('UNLABELED', 'TRAIN', 'VAL'),
                   help='images per split (default 400 200 100: stage A '
                   'takes ~2 min; the run that beats random init uses '
                   '1000 unlabeled images, stage A ~6 min, see '
                   'configs/simdetr/README.md)')
    p.add_argument('--backbone-checkpoint',
                   help='stage-A backbone (e.g. an exported MoCo v2 '
                   'ResNet-18); random init when omitted')
    p.add_argument('--num-classes', type=int, default=16,
                   help='pseudo-classes K (default 16 on the toy data)')
    p.add_argument('--boxes-per-img', type=int, default=5,
                   help='stage-A boxes per image kept as round-0 labels '
                   '(default 5; the toy detector has 30 queries)')
    p.add_argument('--pretrain-iters', type=int, default=200)
    p.add_argument('--rounds', type=int, default=2,
                   help='self-training rounds, round 0 included')
    p.add_argument('--relabel-every', type=int,
                   help='iterations per self-training round (default: '
                   '--pretrain-iters / --rounds)')
    p.add_argument('--finetune', action='store_true',
                   help='also fine-tune from the export and from random init')
    p.add_argument('--finetune-iters', type=int, default=200)
    p.add_argument('--val-interval', type=int,
                   help='evaluate the fine-tuning every this many '
                   'iterations (default: once, at the end)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--finetune-seeds', type=int, nargs='+',
                   help='fine-tune from the export and from random init once '
                   'per seed (folders finetune_<init>_s<seed>); default: '
                   'once with --seed (folders finetune_<init>)')
    p.add_argument('--fresh', action='store_true',
                   help='delete the work dir first (no step is reused)')
    return p.parse_args(argv)


def check_toy_data(data, wanted):
    """Stop when the toy data already in ``data`` was made with other
    ``--toy-size`` / ``--seed`` values (``data/meta.json``): the steps after
    it would silently reuse it."""
    meta = osp.join(data, 'meta.json')
    if not osp.isfile(meta):
        return
    with open(meta) as f:
        have = json.load(f).get('params', {})
    diff = {k: (have.get(k), v) for k, v in wanted.items()
            if have.get(k) != v}
    if diff:
        raise SystemExit(
            f'{meta} was made with other settings (key: existing, asked) '
            f'{diff}; rerun with --fresh or another --work-dir')


def run(cmd, log, title, hint=None):
    """Run ``cmd`` with its output in ``log``; on failure stop with the
    log's tail (and ``hint``, a line on what to do)."""
    print(f'\n==> {title}\n    {" ".join(cmd)}', flush=True)
    t0 = time.time()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    env.setdefault('OMP_NUM_THREADS', '1')  # 2 threads on a busy 2-core
    # machine ran the toy pretraining ~5x slower than 1 (measured)
    with open(log, 'w') as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT,
                             cwd=REPO, env=env)
    dt = time.time() - t0
    if rc != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        msg = f'{title} failed (exit {rc}); log {log}:\n{tail}'
        if hint:
            msg += f'\n{hint}'
        raise SystemExit(msg)
    print(f'    done in {dt:.0f} s (log {log})', flush=True)
    return dt


def step(output, cmd, log, title):
    """:func:`run` unless ``output`` exists (then None: reused)."""
    if osp.exists(output):
        print(f'\n==> {title}: reusing {output}', flush=True)
        return None
    return run(cmd, log, title)


def eval_maps(work_dir):
    """[(bbox mAP, mAP50), ...] of every evaluation of the latest run (the
    newest scalars.json holding one), in order."""
    found = []
    for root, _, files in os.walk(work_dir):
        found += [osp.join(root, f) for f in files if f == 'scalars.json']
    for path in sorted(found, key=osp.getmtime, reverse=True):
        with open(path) as f:
            recs = [json.loads(line) for line in f.read().splitlines()]
        maps = [(r['coco/bbox_mAP'], r['coco/bbox_mAP_50']) for r in recs
                if 'coco/bbox_mAP' in r]
        if maps:
            return maps
    raise SystemExit(f'no coco/bbox_mAP in {work_dir}')


def finetune_table(rows, val_interval):
    """Markdown table of ``(init name, eval_maps list, seconds or None)``
    rows: mAP / mAP50 at every evaluation."""
    its = [val_interval * (k + 1) for k in range(max(len(r[1])
                                                    for r in rows))]
    lines = ['| init | ' + ' | '.join(f'mAP / mAP50 at {i} it' for i in its)
             + ' | fine-tune time (s) |', '|---' * (len(its) + 2) + '|']
    for name, maps, dt in rows:
        cells = [f'{m:.3f} / {m50:.3f}' for m, m50 in maps]
        cells += ['-'] * (len(its) - len(cells))
        lines.append(f'| {name} | ' + ' | '.join(cells) +
                     f' | {"earlier run" if dt is None else f"{dt:.0f}"} |')
    return '\n'.join(lines)


def label_recall(files, gt_json):
    """Markdown table: AR@10 / AR@30 and boxes per image of each ``(name,
    proposal or COCO json, topk)`` against the ground truth ``gt_json``,
    the file cut to its best ``topk`` boxes per image (None: all)."""
    sys.path.insert(0, REPO)
    from mmselfdet.datasets.proposals import load_proposal_file
    from mmselfdet.evaluation.proposal_recall import average_recall
    lines = ['| pseudo-labels of `unlabeled` | AR@10 | AR@30 | boxes / img |',
             '|---|---|---|---|']
    for name, path, topk in files:
        table, _ = load_proposal_file(path)
        props = {i: dict(e, bboxes=e['bboxes'][:topk],
                         scores=e['scores'][:topk])
                 for i, e in table.items() if isinstance(i, int)}
        res = average_recall(props, gt_json, max_dets=(10, 30))
        lines.append(f'| {name} | {res["AR@10"]:.3f} | {res["AR@30"]:.3f} '
                     f'| {res["mean_proposals"]:.1f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    from mmselfdet.simdetr.coco import cluster_class_names
    py = sys.executable
    wd = osp.abspath(args.work_dir)
    if args.fresh and osp.isdir(wd):
        shutil.rmtree(wd)
    logs = osp.join(wd, 'logs')
    os.makedirs(logs, exist_ok=True)
    data = osp.join(wd, 'data')
    times = {}
    n_u, n_t, n_v = args.toy_size
    check_toy_data(data, dict(num_unlabeled=n_u, num_train=n_t,
                              num_val=n_v, seed=args.seed))
    if not osp.isfile(osp.join(data, 'annotations', 'val.json')):
        times['data'] = run(
            [py, 'tools/make_toy_dataset.py', '--out', data, '--seed',
             str(args.seed), '--num-unlabeled', str(n_u), '--num-train',
             str(n_t), '--num-val', str(n_v)],
            osp.join(logs, 'data.log'), '1. toy data')
    props = osp.join(wd, 'proposals', 'unlabeled.json')
    cmd = [py, 'tools/detr_pretrain/make_proposals.py',
           osp.join(data, 'annotations', 'unlabeled.json'), '--img-root',
           osp.join(data, 'unlabeled'), '--out', props, '--arch', 'resnet18',
           '--stage', '0', '--img-scale', '256', '256', '--num-clusters',
           '4', '6', '8', '12', '16', '--min-cells', '16', '--smooth', '3',
           '--score', 'contrast', '--workers', '0', '--shard-size', '100',
           '--no-progress', '--seed', str(args.seed)]
    if args.backbone_checkpoint:
        cmd += ['--checkpoint', args.backbone_checkpoint]
    times['stage A'] = run(
        cmd, osp.join(logs, 'stage_a.log'),
        '2. stage A: feature-cluster proposals',
        hint='(here, instead of make_proposals.py --overwrite: rerun with '
        '--fresh, or another --work-dir)')
    k = args.num_classes
    pseudo = osp.join(wd, 'proposals', f'pseudo_labels_k{k}.json')
    times['stage B'] = step(
        pseudo,
        [py, 'tools/detr_pretrain/cluster_pseudo_labels.py', props,
         '--num-classes', str(k), '--seed', str(args.seed), '--max-per-img',
         str(args.boxes_per_img), '--out', pseudo],
        osp.join(logs, 'stage_b.log'), f'3. stage B: k-means into {k} '
        'pseudo-classes')
    pre_dir = osp.join(wd, 'pretrain')
    classes = '[' + ','.join(f"'{c}'" for c in cluster_class_names(k)) + ']'
    it = args.pretrain_iters
    interval = args.relabel_every or max(1, it // max(args.rounds, 1))
    ckpt = osp.join(pre_dir, f'iter_{it}.pth')
    times['stages C+D'] = step(
        ckpt,
        [py, 'tools/train.py', PRETRAIN_CFG, '--work-dir', pre_dir,
         '--cfg-options', f'train_dataloader.dataset.ann_file={pseudo}',
         f'train_dataloader.dataset.data_root={data}/',
         f'train_dataloader.dataset.metainfo.classes={classes}',
         f'model.bbox_head.num_classes={k}',
         f'train_cfg.max_iters={it}', f'train_cfg.interval={interval}',
         f'train_cfg.num_rounds={args.rounds}',
         f'default_hooks.checkpoint.interval={it}',
         f'randomness.seed={args.seed}'],
        osp.join(logs, 'pretrain.log'),
        f'4. stages C+D: Deformable DETR on pseudo-labels, {it} it, '
        f'{args.rounds} self-training round(s)')
    print(f'\npretrained detector: {ckpt}', flush=True)
    rounds = [(f'stage A, best {args.boxes_per_img} per image', props,
               args.boxes_per_img), (f'round 0 (stage B, K={k})', pseudo,
                                     None)]
    from mmselfdet.simdetr.rounds import round_file
    for r in range(1, args.rounds):  # the files SelfTrainingLoop wrote
        if osp.isfile(round_file(pre_dir, r)):
            rounds.append((f'round {r} (self-training)',
                           round_file(pre_dir, r), None))
    recall = label_recall(rounds, osp.join(data, 'annotations',
                                           'unlabeled.json'))
    print('\n' + recall, flush=True)
    if not args.finetune:
        print('stage times (s): ' + ', '.join(
            f'{k} {"reused" if v is None else f"{v:.0f}"}'
            for k, v in times.items()), flush=True)
        with open(osp.join(wd, 'results.md'), 'w') as f:
            f.write(recall + '\n')
        return
    export = osp.join(wd, 'simdetr_exported.pth')
    run([py, 'tools/export_checkpoint.py', ckpt, export,
         '--downstream-config', FINETUNE_CFG], osp.join(logs, 'export.log'),
        '5. export: whole detector minus the class layer')
    rows, records = [], []
    seeds = args.finetune_seeds or [args.seed]
    for seed in seeds:
        for name, load in (('SimDETR (this pipeline)', export),
                           ('random init', None)):
            tag = 'simdetr' if load else 'random'
            if args.finetune_seeds:
                tag, name = f'{tag}_s{seed}', f'{name}, seed {seed}'
            ft = osp.join(wd, f'finetune_{tag}')
            fi = args.finetune_iters
            vi = args.val_interval or fi
            opts = [f'train_dataloader.dataset.data_root={data}/',
                    f'val_dataloader.dataset.data_root={data}/',
                    f'test_dataloader.dataset.data_root={data}/',
                    f'val_evaluator.ann_file={data}/annotations/val.json',
                    f'test_evaluator.ann_file={data}/annotations/val.json',
                    f'train_cfg.max_iters={fi}',
                    f'train_cfg.val_interval={vi}',
                    f'param_scheduler.1.end={fi}',
                    f'param_scheduler.1.milestones=[{int(fi * 0.8)}]',
                    f'default_hooks.checkpoint.interval={fi}',
                    f'randomness.seed={seed}']
            if load:
                opts.append(f'load_from={load}')
            done = osp.join(ft, f'iter_{fi}.pth')
            dt = step(
                done, [py, 'tools/train.py', FINETUNE_CFG, '--work-dir', ft,
                       '--cfg-options'] + opts,
                osp.join(logs, f'ft_{tag}.log'),
                f'6. fine-tune from {name}, {fi} it')
            maps = eval_maps(ft)
            rows.append((name, maps, dt))
            records.append(dict(init='simdetr' if load else 'random',
                                seed=seed, mAP=maps[-1][0],
                                mAP50=maps[-1][1], seconds=dt))
    # machine-readable results (the toy benchmark reads this file)
    with open(osp.join(wd, 'results.json'), 'w') as f:
        json.dump(dict(finetune=records, finetune_iters=args.finetune_iters,
                       stage_seconds=times), f, indent=1)
    table = finetune_table(rows, args.val_interval or args.finetune_iters)
    stage_times = ', '.join(
        f'{k} (earlier run)' if v is None else f'{k} {v:.0f} s'
        for k, v in times.items())
    with open(osp.join(wd, 'results.md'), 'w') as f:
        f.write(f'{recall}\n\n{table}\n\nstage times: {stage_times}\n')
    print('\n' + table + '\n\nstage times: ' + stage_times, flush=True)


if __name__ == '__main__':
    main()
