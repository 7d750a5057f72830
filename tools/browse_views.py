# Copyright (c) mmselfdet contributors. All rights reserved.
"""Draw the views a config's data pipeline makes, with their boxes.

Usage:
    python tools/browse_views.py CONFIG [--num 4] [--out PNG] \
        [--split train] [--seed 0] [--cfg-options KEY=VALUE ...]

Builds ``cfg.<split>_dataloader.dataset`` (wrappers such as
``MultiImageMixDataset`` included), draws ``--num`` samples through the
registered ``ViewsVisualizer`` (``mmselfdet/visualization/``; one row per
sample: the original with every view's footprint, then each view with its
boxes coloured by ``instances_ids``), as mmdet's ``browse_dataset.py`` draws
through ``DetLocalVisualizer``, and writes one PNG grid.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

MAX_BYTES = 240_000


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Draw the views (and their boxes) of a config\'s data '
        'pipeline into one PNG grid.')
    p.add_argument('config', help='config file')
    p.add_argument('--num', type=int, default=4, help='samples (rows)')
    p.add_argument('--out', help='output PNG (default: '
                   'docs/views_<config-stem>.png)')
    p.add_argument('--split', default='train',
                   help='which dataloader\'s dataset: <split>_dataloader')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the sample choice and of the pipeline')
    p.add_argument('--indices', type=int, nargs='+',
                   help='dataset indices to draw (default: --num random ones)')
    p.add_argument('--panel-size', type=int, default=192,
                   help='side of one panel in pixels')
    p.add_argument('--no-lines', action='store_true',
                   help='do not join boxes of the same id across views')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def _caption(visualizer, canvas: np.ndarray, text: str, top: bool):
    """``canvas`` (RGB) with a white strip holding ``text``."""
    lines = text.count('\n') + 1
    strip = np.full((14 * lines + 6, canvas.shape[1], 3), 255, np.uint8)
    visualizer.set_image(strip)
    visualizer.draw_texts(text, np.array([6.0, 3.0]), font_sizes=7,
                          colors='black')
    parts = [visualizer.get_image(), canvas]
    return np.concatenate(parts if top else parts[::-1], 0)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed

    import mmselfdet  # noqa: F401  (registers everything)
    import mmselfdet.visualization  # noqa: F401  (ViewsVisualizer)
    from mmselfdet.datasets.toy_preview import encode_png
    from mmselfdet.registry import DATASETS, VISUALIZERS
    from mmselfdet.visualization import sample_views
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    key = f'{args.split}_dataloader'
    if cfg.get(key) is None or 'dataset' not in cfg[key]:
        sys.exit(f'config has no {key}.dataset')
    dataset = DATASETS.build(cfg[key].dataset)
    n = len(dataset)
    if args.indices:
        bad = [i for i in args.indices if not -n <= i < n]
        if bad:
            sys.exit(f'indices {bad} out of range for {n} samples')
        indices = list(args.indices)
    else:
        rng = np.random.default_rng(args.seed)
        indices = sorted(int(i) for i in rng.choice(
            n, size=min(max(1, args.num), n), replace=False))
    set_random_seed(args.seed)  # the pipeline's own randomness
    samples = [dataset[i] for i in indices]
    names = list(dict.fromkeys(v for s in samples for v in sample_views(s)[0]))
    visualizer = VISUALIZERS.build(dict(
        type='ViewsVisualizer', name='browse_views',
        panel_size=args.panel_size, lines=not args.no_lines))
    visualizer.dataset_meta = getattr(dataset, 'metainfo', None)
    rows = []
    for sample in samples:
        meta = next(iter(sample_views(sample)[1].values())).metainfo
        path = meta.get('img_path')
        ori = cv2.imread(path) if path and osp.isfile(path) else None
        visualizer.add_datasample(
            osp.basename(str(path)), None if ori is None else ori[..., ::-1],
            sample, view_names=names)
        rows.append(visualizer.get_image())
    stem = osp.splitext(osp.basename(args.config))[0]
    canvas = np.concatenate(rows, 0)
    canvas = _caption(visualizer, canvas, f'{stem} · {args.split} · samples '
                      f'{indices} · seed {args.seed}', top=True)
    canvas = _caption(visualizer, canvas, visualizer.legend(), top=False)
    out = args.out or osp.join('docs', f'views_{stem}.png')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    data = encode_png(np.ascontiguousarray(canvas[..., ::-1]), MAX_BYTES)
    with open(out, 'wb') as f:
        f.write(data)
    print(f'wrote {out} ({canvas.shape[1]}x{canvas.shape[0]} px, '
          f'{len(data) / 1024:.0f} kB, {len(indices)} samples of {n})')


if __name__ == '__main__':
    main()
