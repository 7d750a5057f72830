# Copyright (c) mmselfdet contributors. All rights reserved.
"""Every pending GPU figure of issue 18 in one prepared run.

A GPU machine is lent for minutes at a time: this script makes the data the
paper configs expect from generated toy scenes (real JPEG files, decoded by
the configs' own pipelines), then runs ``throughput.py`` once per figure,
each in its own process with a time limit (one failure does not stop the
rest), and writes one JSON per figure plus ``summary.md``::

    python tools/benchmarks/gpu_figures.py --out-dir $OUT            # all
    python tools/benchmarks/gpu_figures.py --out-dir $OUT --part 1/2  # half
    python tools/benchmarks/gpu_figures.py --list                    # names

Data (``--data-dir``, made once): toy scenes of ``--img-size`` px laid out
as ``imagenet/{train/,meta/train.txt}`` and ``coco/{train2017/,
annotations/instances_train2017.json}``; the toy ground truth stands in for
the selective-search proposal files (SoCo, object-aware crops), so no
proposal generation runs on the GPU machine's clock.

Images are ``--img-size`` = 448 px squares by default (0.20 MP, as
ImageNet's common 500 x 375; a toy scene's JPEG decodes in about the time
of a natural photo of that size, ``docs/benchmarks.md``), so the CPU
workers' decode costs what real files cost.

``--tiny`` (the CPU test): batch 2 and no DataLoader workers. With
``--device cpu`` a figure that uses AMP (mmengine's AMP wrapper needs CUDA)
runs in fp32 instead: ``--amp`` dropped, an AMP config's wrapper swapped
for its fp32 twin (``throughput.py --fp32``); its status says so.
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
sys.path.insert(0, REPO)

IN1K = 'imagenet'
COCO = 'coco'

# stock mmdet's R50-FPN detectors given the papers' protocol
# (configs/benchmarks/_base_/protocol.py): --stock-options values
SAME_BACKBONE_NECK = [
    'model.backbone.frozen_stages=-1', 'model.backbone.init_cfg=None',
    'model.backbone.norm_cfg.type=SyncBN', 'model.backbone.norm_eval=False',
    'model.neck.norm_cfg.type=SyncBN', 'model.neck.norm_cfg.requires_grad=True']
SAME_ROI_HEADS = [  # mmdet's 4conv1fc head (ours only sets its default norm)
    'model.roi_head.bbox_head.type=Shared4Conv1FCBBoxHead',
    'model.roi_head.bbox_head.norm_cfg.type=SyncBN',
    'model.roi_head.bbox_head.norm_cfg.requires_grad=True',
    'model.roi_head.mask_head.norm_cfg.type=SyncBN',
    'model.roi_head.mask_head.norm_cfg.requires_grad=True']

# name, config, data layout, extra throughput.py arguments, AMP in the
# config itself (skipped by --tiny on CPU); targets first
FIGURES = [
    ('mocov2', 'configs/mocov2/mocov2_r50_8xb32-coslr-200e_in1k.py', IN1K,
     ['--ceiling'], False),
    ('mocov2-gpuaug', 'configs/mocov2/mocov2-gpuaug_r50_8xb32-coslr-200e_'
     'in1k.py', IN1K, ['--ceiling'], False),
    ('insloc', 'configs/insloc/insloc_r50_fpn_8xb32-coslr-200e_in1k.py', IN1K,
     ['--ceiling'], False),
    ('insloc-gpuaug', 'configs/insloc/insloc-gpuaug_r50_fpn_8xb32-coslr-200e_'
     'in1k.py', IN1K, ['--ceiling'], False),
    ('soco', 'configs/soco/soco_r50_fpn_8xb32-lars-100e_in1k.py', IN1K,
     ['--ceiling'], True),
    ('soco-gpuaug', 'configs/soco/soco-gpuaug_r50_fpn_8xb32-lars-100e_in1k.py',
     IN1K, ['--ceiling'], True),
    ('soco-e2e-gpuaug', 'configs/soco/soco-e2e-gpuaug_r50_fpn_8xb32-lars-100e_'
     'in1k.py', IN1K, [], True),
    ('retinanet-vs-stock', 'configs/benchmarks/retinanet_r50-syncbn_fpn_ms-'
     '1x_coco.py', COCO,
     ['--compare', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'], False),
    ('mask-rcnn-vs-stock', 'configs/benchmarks/mask-rcnn_r50-syncbn_fpn-'
     '4conv1fc_ms-1x_coco.py', COCO,
     ['--compare', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'], False),
    # stock given our protocol's model values: the ratio is the plugin's
    # overhead alone (model_diff empty, or only the head's type name)
    ('retinanet-vs-stock-same', 'configs/benchmarks/retinanet_r50-syncbn_'
     'fpn_ms-1x_coco.py', COCO,
     ['--compare', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
      '--stock-options'] + SAME_BACKBONE_NECK, False),
    ('mask-rcnn-vs-stock-same', 'configs/benchmarks/mask-rcnn_r50-syncbn_'
     'fpn-4conv1fc_ms-1x_coco.py', COCO,
     ['--compare', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
      '--stock-options'] + SAME_BACKBONE_NECK + SAME_ROI_HEADS, False),
    ('detco-gpuaug', 'configs/detco/detco-gpuaug_r50_8xb32-coslr-200e_in1k.py',
     IN1K, ['--ceiling'], False),
    ('objcrop-gpuaug', 'configs/objcrop/mocov2-objcrop-gpuaug_r50_8xb32-coslr-'
     '200e_coco.py', COCO, ['--ceiling'], False),
    ('byol-gpuaug', 'configs/byol/byol-gpuaug_r50_16xb256-coslr-200e_in1k.py',
     IN1K, ['--ceiling'], False),
    # fp16 AMP and channels_last (does NHWC pay against the RoI copies?)
    ('mocov2-gpuaug-amp', 'configs/mocov2/mocov2-gpuaug_r50_8xb32-coslr-200e_'
     'in1k.py', IN1K, ['--ceiling', '--amp'], True),
    ('mocov2-gpuaug-amp-cl', 'configs/mocov2/mocov2-gpuaug_r50_8xb32-coslr-'
     '200e_in1k.py', IN1K, ['--ceiling', '--amp', '--channels-last'], True),
    ('insloc-gpuaug-amp', 'configs/insloc/insloc-gpuaug_r50_fpn_8xb32-coslr-'
     '200e_in1k.py', IN1K, ['--ceiling', '--amp'], True),
    ('insloc-gpuaug-amp-cl', 'configs/insloc/insloc-gpuaug_r50_fpn_8xb32-'
     'coslr-200e_in1k.py', IN1K, ['--ceiling', '--amp', '--channels-last'],
     True),
]

TOY_CLASSES = "['disc','square','triangle','ring','cross']"


def make_data(root: str, img_size: int, num: int) -> None:
    """Toy scenes as an ImageNet-style list and a COCO-style folder."""
    from mmselfdet.datasets.toy import generate_toy_dataset
    toy = osp.join(root, 'toy')
    generate_toy_dataset(toy, img_size=img_size, num_unlabeled=num,
                         num_train=4, num_val=4, progress=False)
    ann = osp.join(toy, 'annotations', 'unlabeled.json')
    with open(ann) as f:
        names = [im['file_name'] for im in json.load(f)['images']]
    for layout, img_dir, ann_rel, prop_rel in (
            (IN1K, 'train', 'meta/train.txt', 'proposals/ss_fast_train.json'),
            (COCO, 'train2017', 'annotations/instances_train2017.json',
             'proposals/ss_fast_train2017.json')):
        base = osp.join(root, layout)
        for rel in (ann_rel, prop_rel):
            os.makedirs(osp.dirname(osp.join(base, rel)), exist_ok=True)
        link = osp.join(base, img_dir)
        if not osp.lexists(link):
            os.symlink(osp.join(toy, 'unlabeled'), link)
        if ann_rel.endswith('.txt'):
            with open(osp.join(base, ann_rel), 'w') as f:
                f.write(''.join(n + '\n' for n in names))
        else:
            shutil.copyfile(ann, osp.join(base, ann_rel))
        # the ground truth as the "proposals" (a COCO json is accepted)
        shutil.copyfile(ann, osp.join(base, prop_rel))


def dataset_key(cfg_path: str) -> str:
    """Dotted key of the train dataset that holds ``data_root``, through
    dataset wrappers (InsLoc's ``MultiImageMixDataset``)."""
    from mmengine.config import Config
    ds = Config.fromfile(osp.join(REPO, cfg_path)).train_dataloader.dataset
    key = 'train_dataloader.dataset'
    while 'data_root' not in ds and isinstance(ds.get('dataset'), dict):
        ds, key = ds.dataset, key + '.dataset'
    if 'data_root' not in ds:
        raise KeyError(f'{cfg_path}: no data_root in {key} or the datasets '
                       'it wraps')
    return key


def figure_command(fig, data_root: str, out_json: str, args) -> list:
    name, cfg, layout, extra, amp = fig
    root = osp.join(data_root, layout) + '/'
    key = dataset_key(cfg)
    opts = [f'{key}.data_root={root}']
    if layout == COCO and '--compare' in extra:  # detector fine-tuning
        opts.append(f'{key}.metainfo.classes={TOY_CLASSES}')
    if args.device == 'cpu' and amp:  # mmengine's AMP wrapper needs CUDA
        extra = [a for a in extra if a != '--amp']
        extra = extra + ['--fp32']
    cmd = [sys.executable, osp.join(REPO, 'tools/benchmarks/throughput.py'),
           osp.join(REPO, cfg), '--device', args.device, '--steps',
           str(args.steps), '--warmup', str(args.warmup), '--out', out_json
           ] + extra
    if args.tiny:
        cmd += ['--batch-size', '2', '--workers', '0']
    elif args.workers is not None:
        cmd += ['--workers', str(args.workers)]
    return cmd + ['--cfg-options'] + opts


def summary(rows: list) -> str:
    cols = [('img/s', 'img_per_s', '{:.1f}'), ('step ms', 'step_ms', '{:.1f}'),
            ('data wait ms', 'data_wait_ms', '{:.1f}'),
            ('preprocess ms', 'preprocess_ms', '{:.1f}'),
            ('ratio to ceiling', 'ratio', '{:.2f}'),
            ('overhead vs stock', 'overhead_ratio', '{:.3f}'),
            ('heat-map share', 'box_source_share', '{:.3f}'),
            ('peak MiB', 'peak_mem_mib', '{:.0f}')]
    out = ['| figure | ' + ' | '.join(c[0] for c in cols) +
           ' | AMP | model_diff | status |',
           '|---|' + '---|' * (len(cols) + 3)]
    for name, res, status in rows:
        cells = [c[2].format(res[c[1]]) if isinstance(res.get(c[1]),
                                                      (int, float))
                 else '-' for c in cols]
        cells.append({True: 'fp16', False: 'fp32'}.get(res.get('amp'), '-'))
        diff = res.get('model_diff')
        cells.append('-' if diff is None else (', '.join(diff) or 'none'))
        out.append(f'| {name} | ' + ' | '.join(cells) + f' | {status} |')
    return '\n'.join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out-dir', default='work_dirs/gpu_figures')
    p.add_argument('--data-dir', default=None,
                   help='default: OUT_DIR/../gpu_figures_data')
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--img-size', type=int, default=448)
    p.add_argument('--num-images', type=int, default=512)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--workers', type=int, default=None)
    p.add_argument('--timeout', type=int, default=150,
                   help='seconds per figure')
    p.add_argument('--only', nargs='+', default=None)
    p.add_argument('--part', default='1/1')
    p.add_argument('--tiny', action='store_true')
    p.add_argument('--list', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    figs = [f for f in FIGURES if args.only is None or f[0] in args.only]
    if args.only and len(figs) != len(args.only):
        known = [f[0] for f in FIGURES]
        raise SystemExit(f'unknown figure(s): '
                         f'{sorted(set(args.only) - set(known))}; '
                         f'known: {known}')
    i, n = (int(x) for x in args.part.split('/'))
    figs = figs[i - 1::n]
    if args.list:
        print('\n'.join(f[0] for f in figs))
        return []
    out = osp.abspath(args.out_dir)
    data = osp.abspath(args.data_dir or osp.join(out, '..',
                                                 'gpu_figures_data'))
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    make_data(data, args.img_size, args.num_images)
    print(f'data ready in {time.time() - t0:.0f} s: {data}', flush=True)
    rows = []
    for k, fig in enumerate(figs, 1):
        name, amp = fig[0], fig[4]
        out_json = osp.join(out, name + '.json')
        ok = 'ok (fp32: AMP needs CUDA)' if args.device == 'cpu' and amp \
            else 'ok'
        if osp.isfile(out_json):  # resumable: a finished figure is kept
            with open(out_json) as f:
                rows.append((name, json.load(f), 'ok (earlier run)'))
            continue
        cmd = figure_command(fig, data, out_json, args)
        t = time.time()
        print(f'[{k}/{len(figs)}] {name} ...', flush=True)
        with open(osp.join(out, name + '.log'), 'w') as log:
            try:
                rc = subprocess.run(cmd, cwd=REPO, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 'timeout'
        if rc == 0 and osp.isfile(out_json):
            with open(out_json) as f:
                res = json.load(f)
            rows.append((name, res, ok))
        else:
            res = {}
            rows.append((name, res, f'failed ({rc}), see {name}.log'))
        print(f'    {rows[-1][2]} in {time.time() - t:.0f} s', flush=True)
    table = summary(rows)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(f'{table}\n\nimages {args.img_size} px, steps {args.steps},'
                f' warm-up {args.warmup}, device {args.device}, '
                f'{time.time() - t0:.0f} s in all\n')
    print(table, flush=True)
    return rows


if __name__ == '__main__':
    main()
