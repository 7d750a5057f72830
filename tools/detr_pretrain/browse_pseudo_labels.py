# Copyright (c) mmselfdet contributors. All rights reserved.
"""Draw DETR-pretraining boxes on images: one row per image, one column per
file (stage-A proposals, stage-B pseudo-labels, a self-training round, or
the ground truth), into a PNG.

A file is either a proposal file (:mod:`mmselfdet.datasets.proposals`;
boxes drawn in one colour, best ``--max-boxes``) or a COCO json (boxes
coloured by category, i.e. by pseudo-class, with the id written). Images
are matched by COCO image id.

Example::

    python tools/detr_pretrain/browse_pseudo_labels.py \\
        work_dirs/simdetr_toy/proposals/unlabeled.json \\
        work_dirs/simdetr_toy/proposals/pseudo_labels_k16.json \\
        work_dirs/simdetr_toy/pretrain/self_training/round_01.json \\
        --img-root work_dirs/simdetr_toy/data/unlabeled --out pseudo.png
"""
import argparse
import json
import os.path as osp



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('files', nargs='+', help='proposal or COCO json files')
    p.add_argument('--img-root', required=True, help='image folder')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--num', type=int, default=6, help='images (rows)')
    p.add_argument('--start', type=int, default=0,
                   help='first image (position in id order)')
    p.add_argument('--max-boxes', type=int, default=30,
                   help='boxes drawn per image and file, best first')
    p.add_argument('--panel', type=float, default=2.4, help='inches a panel')
    return p.parse_args(argv)


def read_boxes(path: str):
    """``(kind, images by id, {id: [(x1, y1, x2, y2, label or None,
    score)]})`` of a proposal or COCO file, best first."""
    with open(path) as f:
        obj = json.load(f)
    if 'proposals' in obj:
        kind, items = 'proposals', obj['proposals']
    elif 'annotations' in obj:
        kind, items = 'coco', obj['annotations']
    else:
        raise KeyError(f'"{path}" has neither "proposals" nor '
                       '"annotations"')
    images = {im['id']: im for im in obj['images']}
    boxes = {}
    for a in items:
        x, y, w, h = a['bbox']
        boxes.setdefault(a['image_id'], []).append(
            (x, y, x + w, y + h, a.get('category_id'), a.get('score', 1.0)))
    for v in boxes.values():
        v.sort(key=lambda b: -b[5])
    return kind, images, boxes


def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmcv import imread
    files = [read_boxes(f) for f in args.files]
    ids = sorted(files[0][1])[args.start:args.start + args.num]
    if not ids:
        raise SystemExit(f'no image at position {args.start} of '
                         f'{args.files[0]}')
    cmap = plt.get_cmap('tab20')
    titles = [osp.basename(f) for f in args.files]
    if len(set(titles)) < len(titles):  # same names: show their folders
        titles = [osp.join(osp.basename(osp.dirname(osp.abspath(f))), t)
                  for f, t in zip(args.files, titles)]
    rows, cols = len(ids), len(files)
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(args.panel * cols, args.panel * rows))
    for r, img_id in enumerate(ids):
        name = files[0][1][img_id]['file_name']
        img = imread(osp.join(args.img_root, name), channel_order='rgb')
        for c, (kind, _, boxes) in enumerate(files):
            ax = axes[r][c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            drawn = boxes.get(img_id, [])[:args.max_boxes]
            for x1, y1, x2, y2, lab, _ in drawn:
                col = 'yellow' if lab is None else cmap(int(lab) % 20)
                ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1,
                                           fill=False, lw=1.2, ec=col))
                if lab is not None:
                    ax.text(x1 + 1, y1 + 1, str(lab), color='white',
                            fontsize=6, va='top',
                            bbox=dict(fc=col, ec='none', pad=0.5))
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
            ax.set_xlabel(f'{name}: {len(boxes.get(img_id, []))} '
                          f'{"boxes" if kind == "proposals" else "labels"}',
                          fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f'wrote {args.out} ({rows} images x {cols} files)')
    return args.out


if __name__ == '__main__':
    main()
