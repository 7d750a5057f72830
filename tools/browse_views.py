# Copyright (c) mmselfdet contributors. All rights reserved.
"""Draw the views a config's data pipeline makes, with their boxes.

Usage:
    python tools/browse_views.py CONFIG [--num 4] [--out PNG] \
        [--split train] [--seed 0] [--cfg-options KEY=VALUE ...]

Builds ``cfg.<split>_dataloader.dataset`` (wrappers such as
``MultiImageMixDataset`` included), draws ``--num`` samples and writes one
PNG grid with a row per sample:

* first column: the original image (``img_path``) with the footprint of
  every view (the view's rectangle mapped back through the inverse of its
  ``homography_matrix``) in that view's colour, a dot on the corner that
  became the view's top-left one (so flips show), and the view's boxes
  mapped back as dashed rectangles in the view's colour;
* then each view (BGR -> RGB) framed in its colour, with its boxes coloured
  by ``gt_instances.instances_ids`` (same id = same object = same colour in
  every view; thin lines join the same id in neighbouring views). Views
  without ids (independent views, e.g. MoCo's) colour boxes by index, which
  then says nothing about correspondence.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

# colours of the views (frames, footprints); boxes use _ID_COLOURS
_VIEW_COLOURS = ('#00a6ff', '#ff7a00', '#2bd14b', '#ff2e88', '#ffd400',
                 '#9b5cff', '#00e0c6', '#b5651d')
_ID_COLOURS = ('#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231',
               '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#fabebe',
               '#008080', '#e6beff', '#9a6324', '#fffac8', '#800000',
               '#aaffc3', '#808000', '#ffd8b1', '#000075', '#808080')
MAX_BYTES = 240_000


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Draw the views (and their boxes) of a config\'s data '
        'pipeline into one PNG grid.')
    p.add_argument('config', help='config file')
    p.add_argument('--num', type=int, default=4, help='number of samples '
                   '(rows)')
    p.add_argument('--out', help='output PNG (default: '
                   'docs/views_<config-stem>.png)')
    p.add_argument('--split', default='train',
                   help='which dataloader\'s dataset: <split>_dataloader')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the sample choice and of the pipeline')
    p.add_argument('--indices', type=int, nargs='+',
                   help='dataset indices to draw (default: --num random ones)')
    p.add_argument('--panel-size', type=float, default=2.2,
                   help='size of one panel in inches')
    p.add_argument('--dpi', type=int, default=80)
    p.add_argument('--no-lines', action='store_true',
                   help='do not join boxes of the same id across views')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def build_dataset(cfg, split: str):
    import mmselfdet  # noqa: F401  (registers everything)
    from mmengine.registry import init_default_scope

    from mmselfdet.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    key = f'{split}_dataloader'
    if cfg.get(key) is None or 'dataset' not in cfg[key]:
        sys.exit(f'config has no {key}.dataset')
    return DATASETS.build(cfg[key].dataset)


def _to_views(sample: dict) -> Tuple[Dict[str, np.ndarray], Dict[str, object]]:
    """``{'inputs', 'data_samples'}`` of one sample -> ``({view: HxWx3 RGB
    uint8}, {view: data sample})``; a single-view sample becomes 'img'."""
    inputs, samples = sample['inputs'], sample['data_samples']
    if isinstance(inputs, dict):
        names = list(inputs)
        pairs = [(n, inputs[n], samples[n]) for n in names]
    elif isinstance(inputs, (list, tuple)):
        pairs = [(f'view{i}', x, s)
                 for i, (x, s) in enumerate(zip(inputs, samples))]
    else:
        pairs = [('img', inputs, samples)]
    imgs, metas = {}, {}
    for name, x, s in pairs:
        arr = x.detach().cpu().numpy() if hasattr(x, 'detach') else \
            np.asarray(x)
        if arr.ndim == 2:
            arr = arr[None]
        arr = np.transpose(arr, (1, 2, 0))
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        imgs[name] = np.ascontiguousarray(arr[..., 2::-1])  # BGR -> RGB
        metas[name] = s
    return imgs, metas


def _boxes_and_ids(data_sample) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    inst = getattr(data_sample, 'gt_instances', None)
    if inst is None or 'bboxes' not in inst:
        return np.zeros((0, 4), np.float32), None
    boxes = inst.bboxes
    boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    boxes = np.asarray(boxes.detach().cpu().numpy() if hasattr(
        boxes, 'detach') else boxes, np.float32).reshape(-1, 4)
    ids = None
    if 'instances_ids' in inst:
        ids = inst.instances_ids
        ids = np.asarray(ids.cpu().numpy() if hasattr(ids, 'cpu') else ids,
                         np.int64).reshape(-1)
    return boxes, ids


def _tile_grid(boxes: np.ndarray, ids: Optional[np.ndarray], w: int,
               h: int) -> int:
    """``g`` when the boxes are exactly the ``g x g`` cells of the view in
    row-major order with ids ``0 .. g*g-1`` (a jigsaw tile such as DetCo's
    local view: the ids are patch indices, not objects); else 0."""
    n = len(boxes)
    g = int(round(np.sqrt(n)))
    if n < 4 or g * g != n or ids is None or len(ids) != n or \
            not np.array_equal(ids, np.arange(n)):
        return 0
    rows, cols = np.divmod(np.arange(n), g)
    pw, ph = w / g, h / g
    cells = np.stack([cols * pw, rows * ph, (cols + 1) * pw,
                      (rows + 1) * ph], 1)
    return g if np.allclose(boxes, cells, atol=1.0) else 0


def _inverse(matrix) -> Optional[np.ndarray]:
    if matrix is None:
        return None
    try:
        return np.linalg.inv(np.asarray(matrix, np.float64))
    except np.linalg.LinAlgError:
        return None


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    out = pts @ np.asarray(matrix, np.float64).T
    return out[:, :2] / out[:, 2:3]


# --------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------
def _id_colour(key: int) -> str:
    return _ID_COLOURS[int(key) % len(_ID_COLOURS)]


def _style_axes(ax, colour=None, width=0.0):
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(colour is not None)
        if colour is not None:
            spine.set_edgecolor(colour)
            spine.set_linewidth(width)


def _rect(ax, box, colour, lw=1.5, ls='-', alpha=1.0):
    from matplotlib.patches import Rectangle
    x1, y1, x2, y2 = (float(v) for v in box)
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                           edgecolor=colour, linewidth=lw, linestyle=ls,
                           alpha=alpha))


def _label(ax0, img_h, x, y, text, colour, stroke, placed):
    """Text at ``(x, y)`` of the original (``img_h`` rows), moved down below
    earlier labels of this row."""
    line_h = 10 * img_h / max(ax0.bbox.height, 1.0)  # 10 px
    while any(abs(x - px) < 6 * line_h and abs(y - py) < line_h
              for px, py in placed):
        y += line_h
    placed.append((x, y))
    ax0.text(x, y, text, color=colour, fontsize=7, va='top', ha='left',
             fontweight='bold', path_effects=stroke, clip_on=True)


def _draw_tile_footprint(ax0, img_h, ds, boxes, colour, name, stroke, placed,
                         stats):
    """Each patch of a jigsaw tile mapped back to the original, through its
    own ``jigsaw_homography_matrices[k]`` (the tile frame is piecewise, so
    the view's ``homography_matrix``, which maps into the crop frame, does
    not place the tile). Without that meta key nothing is drawn."""
    from matplotlib.patches import Polygon
    mats = ds.metainfo.get('jigsaw_homography_matrices')
    if mats is None or len(mats) != len(boxes):
        stats['tile_no_meta'] = True
        return
    for k, (box, mat) in enumerate(zip(boxes, np.asarray(mats))):
        inv = _inverse(mat)
        if inv is None:
            continue
        x1, y1, x2, y2 = box
        poly = _apply(inv, np.array([[x1, y1], [x2, y1], [x2, y2],
                                     [x1, y2]], np.float64))
        ax0.add_patch(Polygon(poly, closed=True, fill=False,
                              edgecolor=colour, linewidth=1.2))
        ax0.plot(*poly[0], 'o', color=colour, markersize=2.5)
        cx, cy = poly.mean(0)
        ax0.text(cx, cy, str(k), color=colour, fontsize=6, ha='center',
                 va='center', path_effects=stroke, clip_on=True)
    first = np.asarray(mats)[0]
    inv = _inverse(first)
    if inv is not None:
        x, y = _apply(inv, boxes[:1, :2].astype(np.float64))[0]
        _label(ax0, img_h, x + 2, y + 2, name, colour, stroke, placed)


def draw_row(fig, axes, sample: dict, view_names: List[str],
             lines: bool) -> dict:
    """Draw one sample into a row of axes; returns counts for the caption."""
    import cv2
    from matplotlib.patches import ConnectionPatch, Polygon
    import matplotlib.patheffects as pe

    from mmselfdet.datasets.transforms.views import map_boxes
    imgs, metas = _to_views(sample)
    stroke = [pe.withStroke(linewidth=2, foreground='black')]
    first = next(iter(metas.values()))
    img_path = first.metainfo.get('img_path')
    ori = cv2.imread(img_path) if img_path and osp.isfile(img_path) else None
    ax0 = axes[0]
    if ori is not None:
        ax0.imshow(ori[..., ::-1], interpolation='nearest',
                   extent=(0, ori.shape[1], ori.shape[0], 0))
        ax0.set_title(f'{osp.basename(img_path)} · '
                      f'{ori.shape[1]}×{ori.shape[0]}', fontsize=8)
    else:
        ax0.imshow(np.full((8, 8, 3), 230, np.uint8))
        ax0.set_title(f'original not readable\n{img_path}', fontsize=7)
    _style_axes(ax0)
    stats = dict(ids=False, boxes=0, tiles=False, tile_no_meta=False,
                 no_matrix=False)
    placed: List[Tuple[float, float]] = []  # footprint labels on ax0
    centres: Dict[str, Dict[int, Tuple[float, float]]] = {}
    for k, name in enumerate(view_names):
        ax = axes[k + 1]
        if name not in imgs:
            ax.axis('off')
            continue
        vcol = _VIEW_COLOURS[view_names.index(name) % len(_VIEW_COLOURS)]
        img, ds = imgs[name], metas[name]
        h, w = img.shape[:2]
        boxes, ids = _boxes_and_ids(ds)
        grid = _tile_grid(boxes, ids, w, h)
        stats['boxes'] += 0 if grid else len(boxes)  # object boxes only
        has_ids = ids is not None and len(ids) == len(boxes) and not grid
        stats['ids'] |= has_ids and len(boxes) > 0
        keys = ids if ids is not None and len(ids) == len(boxes) else \
            np.arange(len(boxes))
        # the view
        # extent: axes coordinates = pixel-edge coordinates, as boxes and
        # homography_matrix use them
        ax.imshow(img, interpolation='nearest', extent=(0, w, h, 0))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        _style_axes(ax, vcol, 3.0)
        flip = ds.metainfo.get('flip')
        extra = ' · flip' if flip else ''
        what = f'{grid}×{grid} tile' if grid else \
            f'{len(boxes)} box{"es" if len(boxes) != 1 else ""}'
        ax.set_title(f'{name} · {w}×{h} · {what}{extra}', fontsize=8,
                     color=vcol, fontweight='bold')
        centres[name] = {}
        if grid:  # patch cells: thin white grid, patch index in each cell
            for box, key in zip(boxes, keys):
                _rect(ax, box, 'white', lw=0.8, alpha=0.8)
                ax.text(box[0] + 0.3, box[1] + 0.3, f'p{int(key)}',
                        color='white', fontsize=6, va='top', ha='left',
                        path_effects=stroke)
            stats['tiles'] = True
            if ori is not None:
                _draw_tile_footprint(ax0, ori.shape[0], ds, boxes, vcol,
                                     name, stroke, placed, stats)
            continue
        for box, key in zip(boxes, keys):
            col = _id_colour(key)
            _rect(ax, box, col, lw=1.8)
            ax.text(box[0] + 0.3, box[1] + 0.3, str(int(key)), color='white',
                    fontsize=6, va='top', ha='left', path_effects=stroke)
            if has_ids:
                centres[name][int(key)] = ((box[0] + box[2]) / 2,
                                           (box[1] + box[3]) / 2)
        # the view's footprint and boxes on the original
        inv = _inverse(ds.metainfo.get('homography_matrix'))
        if inv is None or ori is None:
            stats['no_matrix'] |= inv is None
            continue
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        poly = _apply(inv, corners)
        ax0.add_patch(Polygon(poly, closed=True, fill=False, edgecolor=vcol,
                              linewidth=2.2))
        ax0.plot(*poly[0], 'o', color=vcol, markersize=5,
                 markeredgecolor='black', markeredgewidth=0.6)
        # name inside the footprint, at its upper-left, below earlier names
        _label(ax0, ori.shape[0], poly[:, 0].min() + 2,
               poly[:, 1].min() + 2, name, vcol, stroke, placed)
        for box in map_boxes(boxes, inv):
            _rect(ax0, box, vcol, lw=1.1, ls='--', alpha=0.9)
    if ori is not None:
        # a small margin so footprints on the image border stay visible
        m = 0.02 * max(ori.shape[:2])
        ax0.set_xlim(-m, ori.shape[1] + m)
        ax0.set_ylim(ori.shape[0] + m, -m)
        ax0.set_facecolor('#d9d9d9')
    # join the same id in neighbouring views
    if lines:
        present = [n for n in view_names if n in centres]
        for a, b in zip(present[:-1], present[1:]):
            ia, ib = view_names.index(a) + 1, view_names.index(b) + 1
            for key in sorted(set(centres[a]) & set(centres[b])):
                fig.add_artist(ConnectionPatch(
                    xyA=centres[a][key], coordsA=axes[ia].transData,
                    xyB=centres[b][key], coordsB=axes[ib].transData,
                    color=_id_colour(key), linewidth=1.0, alpha=0.75))
    return stats


def render(dataset, indices: List[int], title: str, panel: float, dpi: int,
           lines: bool) -> np.ndarray:
    """Draw the samples at ``indices``; returns the figure as a BGR array."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    samples = [dataset[i] for i in indices]
    view_names: List[str] = []
    for s in samples:
        for n in _to_views(s)[0]:
            if n not in view_names:
                view_names.append(n)
    ncols, nrows = 1 + len(view_names), len(samples)
    # inches: panels, a title line above each, a header and a footer
    title_h, head_h, foot_h, gap_w = 0.3, 0.35, 0.5, 0.15
    fig_w = ncols * panel + (ncols + 1) * gap_w
    fig_h = nrows * (panel + title_h) + head_h + foot_h
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, dpi=dpi,
                             figsize=(fig_w, fig_h))
    fig.subplots_adjust(left=gap_w / fig_w, right=1 - gap_w / fig_w,
                        bottom=foot_h / fig_h,
                        top=1 - (head_h + title_h) / fig_h,
                        wspace=gap_w / panel, hspace=title_h / panel)
    any_ids, n_boxes, tiles, tile_no_meta, no_matrix = (False, 0, False,
                                                         False, False)
    for row, s in zip(axes, samples):
        st = draw_row(fig, row, s, view_names, lines)
        any_ids |= st['ids']
        n_boxes += st['boxes']
        tiles |= st['tiles']
        tile_no_meta |= st['tile_no_meta']
        no_matrix |= st['no_matrix']
    if not n_boxes:
        box_note = 'no object boxes in these views'
    elif any_ids:
        box_note = 'boxes: colour = instances_ids (same object in every view)'
    else:
        box_note = 'boxes: no instances_ids, colour = index (not a match)'
    fig.suptitle(title, fontsize=9 if ncols > 2 else 7, fontweight='bold',
                 y=1 - 0.08 / fig_h, va='top', wrap=True)
    if tiles:
        box_note += ('; tiles: p<k> = patch k' + (
            ' (patches not placed on the original: pack '
            'jigsaw_homography_matrices in meta_keys)' if tile_no_meta
            else ', drawn on the original through its own matrix'))
    left = ('left: each view\'s crop mapped back (inverse homography), dot = '
            'its top-left corner, dashed = its boxes')
    if no_matrix:
        left += ('; views without homography_matrix in their meta are not '
                 'placed')
    fig.text(0.5, 0.06 / fig_h, left + '\n' + box_note, ha='center',
             va='bottom', fontsize=7, wrap=True)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return np.ascontiguousarray(rgba[..., 2::-1])  # RGBA -> BGR


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import set_random_seed

    from mmselfdet.datasets.toy import _encode_png
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset = build_dataset(cfg, args.split)
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
    stem = osp.splitext(osp.basename(args.config))[0]
    title = f'{stem} · {args.split} · samples {indices} · seed {args.seed}'
    canvas = render(dataset, indices, title, args.panel_size, args.dpi,
                    not args.no_lines)
    out = args.out or osp.join('docs', f'views_{stem}.png')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    data = _encode_png(canvas, MAX_BYTES)
    with open(out, 'wb') as f:
        f.write(data)
    print(f'wrote {out} ({canvas.shape[1]}x{canvas.shape[0]} px, '
          f'{len(data) / 1024:.0f} kB, {len(indices)} samples of {n})')


if __name__ == '__main__':
    main()
