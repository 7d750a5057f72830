# Copyright (c) mmselfdet contributors. All rights reserved.
"""Draw the named views of one packed sample, with their boxes and where
they come from in the original image (``tools/browse_views.py``)."""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmdet.structures.bbox import get_box_tensor
from mmengine.dist import master_only
from mmengine.visualization import Visualizer

from mmselfdet.registry import VISUALIZERS

__all__ = ['ViewsVisualizer', 'sample_views', 'view_boxes', 'tile_grid']

# colours of the views (frames, footprints); boxes use ID_COLOURS
VIEW_COLOURS = ('#00a6ff', '#ff7a00', '#2bd14b', '#ff2e88', '#ffd400',
                '#9b5cff', '#00e0c6', '#b5651d')
ID_COLOURS = ('#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231',
              '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#fabebe',
              '#008080', '#e6beff', '#9a6324', '#fffac8', '#800000',
              '#aaffc3', '#808000', '#ffd8b1', '#000075', '#808080')
_HEAD, _GAP, _FONT = 18, 6, 7  # header strip, gap (px), font size (pt)


def sample_views(sample: dict) -> Tuple[Dict[str, np.ndarray], dict]:
    """``{'inputs', 'data_samples'}`` of one packed sample -> ``({view:
    (H, W, 3) RGB uint8}, {view: data sample})``; a single-view sample
    becomes the view 'img', a list of views 'view0', 'view1', ..."""
    inputs, samples = sample['inputs'], sample['data_samples']
    if isinstance(inputs, dict):
        pairs = [(n, inputs[n], samples[n]) for n in inputs]
    elif isinstance(inputs, (list, tuple)):
        pairs = [(f'view{i}', x, s)
                 for i, (x, s) in enumerate(zip(inputs, samples))]
    else:
        pairs = [('img', inputs, samples)]
    imgs, metas = {}, {}
    for name, x, s in pairs:
        arr = np.asarray(x.detach().cpu() if hasattr(x, 'detach') else x)
        arr = np.transpose(arr[None] if arr.ndim == 2 else arr, (1, 2, 0))
        arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr
        arr = np.clip(arr, 0, 255).astype(np.uint8)
        imgs[name] = np.ascontiguousarray(arr[..., 2::-1])  # BGR -> RGB
        metas[name] = s
    return imgs, metas


def view_boxes(data_sample) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(N, 4) float32 ``gt_instances.bboxes`` and (N,) int64
    ``instances_ids`` (None without ids) of a data sample."""
    inst = getattr(data_sample, 'gt_instances', None)
    if inst is None or 'bboxes' not in inst:
        return np.zeros((0, 4), np.float32), None
    boxes = get_box_tensor(inst.bboxes)
    boxes = np.asarray(boxes.detach().cpu() if hasattr(boxes, 'detach')
                       else boxes, np.float32).reshape(-1, 4)
    ids = None
    if 'instances_ids' in inst:
        ids = inst.instances_ids
        ids = np.asarray(ids.cpu() if hasattr(ids, 'cpu') else ids,
                         np.int64).reshape(-1)
    return boxes, ids


def tile_grid(boxes: np.ndarray, ids: Optional[np.ndarray], w: int,
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
    cells = np.stack([cols * w / g, rows * h / g, (cols + 1) * w / g,
                      (rows + 1) * h / g], 1)
    return g if np.allclose(boxes, cells, atol=1.0) else 0


def _inverse(matrix) -> Optional[np.ndarray]:
    try:
        return None if matrix is None else np.linalg.inv(
            np.asarray(matrix, np.float64))
    except np.linalg.LinAlgError:
        return None


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 3x3 homography."""
    out = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ matrix.T
    return out[:, :2] / out[:, 2:3]


def _corners(box) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])


@VISUALIZERS.register_module()
class ViewsVisualizer(Visualizer):
    """Draws one sample as a row of panels: the original image, then every
    view.

    * The original (``img_path``, read by the caller) shows the footprint
      of every view (its frame mapped back through the inverse of its
      ``homography_matrix``) in the view's colour, a dot on the corner that
      became the view's top-left one (so flips show), and the view's boxes
      mapped back as dashed rectangles; a jigsaw tile's patches are placed
      through their own ``jigsaw_homography_matrices``.
    * Each view is framed in its colour, its boxes coloured by
      ``gt_instances.instances_ids`` (same id = same object in every view;
      thin lines join the same id in neighbouring views). Views without
      ids colour boxes by index, which says nothing about correspondence.

    Args:
        name (str): Instance name. Defaults to 'views_visualizer'.
        panel_size (int): Side of a panel in pixels. Defaults to 192.
        lines (bool): Join boxes of the same id across views.
            Defaults to True.
        **kwargs: The other arguments of mmengine's ``Visualizer``.
    """

    def __init__(self, name: str = 'views_visualizer', panel_size: int = 192,
                 lines: bool = True, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.panel_size = int(panel_size)
        self.lines = lines
        self.notes: set = set()  # what the drawn rows showed, for a legend

    # --- geometry of the row canvas -------------------------------------
    def _place(self, col: int, shape: Sequence[int]) -> Tuple[float, float,
                                                               float]:
        """``(x0, y0, scale)`` of an image of ``shape`` in panel ``col``."""
        scale = self.panel_size / max(shape[:2])
        return _GAP + col * (self.panel_size + _GAP), _HEAD, scale

    @staticmethod
    def _to_canvas(pts: np.ndarray, place) -> np.ndarray:
        x0, y0, s = place
        return np.asarray(pts, np.float64) * s + (x0, y0)

    def _on_original(self, pts: np.ndarray, place) -> np.ndarray:
        """Original-image points on the canvas, clipped to its panel (a
        composite's frame maps far outside the image)."""
        x0, y0, _ = place
        p = self.panel_size
        return np.clip(self._to_canvas(pts, place), (x0, y0),
                       (x0 + p - 1, y0 + p - 1))

    def _text(self, text: str, pos, colour: str = 'white', size=_FONT,
              valign: str = 'top', halign: str = 'left') -> None:
        self.draw_texts(text, np.array(pos, np.float64), font_sizes=size,
                        colors=colour, vertical_alignments=valign,
                        horizontal_alignments=halign,
                        bboxes=dict(facecolor='black', alpha=0.55, pad=0.5,
                                    edgecolor='none'))

    # --- drawing ----------------------------------------------------------
    @master_only
    def add_datasample(self, name: str, image: Optional[np.ndarray],
                       data_sample: Optional[dict] = None,
                       draw_gt: bool = True, draw_pred: bool = False,
                       show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, step: int = 0,
                       view_names: Optional[List[str]] = None) -> None:
        """Draw one packed sample (``dataset[i]``) as a row.

        Args:
            name (str): Title of the original's panel.
            image (np.ndarray, optional): The original image, RGB; None
                when it cannot be read (footprints are then not drawn).
            data_sample (dict): ``{'inputs', 'data_samples'}`` of the
                sample.
            draw_gt (bool), draw_pred (bool): Unused (views carry only
                ground truth); kept for the Visualizer interface.
            show (bool): Show the row in a window. Defaults to False.
            wait_time (float): Seconds to show it. Defaults to 0.
            out_file (str, optional): Write the row (BGR) there instead of
                to the vis backends.
            step (int): Global step for the vis backends. Defaults to 0.
            view_names (list[str], optional): Panel order (a view missing
                in this sample leaves its panel empty). Defaults to the
                sample's views.
        """
        imgs, metas = sample_views(data_sample)
        names = list(imgs) if view_names is None else list(view_names)
        p = self.panel_size
        canvas = np.full((_HEAD + p + _GAP, _GAP + (len(names) + 1) *
                          (p + _GAP), 3), 255, np.uint8)
        ori_place = None
        if image is not None:
            ori_place = self._place(0, image.shape)
            x0, y0, s = ori_place
            h, w = (int(round(v * s)) for v in image.shape[:2])
            canvas[y0:y0 + h, x0:x0 + w] = cv2.resize(
                image, (w, h), interpolation=cv2.INTER_AREA)
        places = {}
        for k, view in enumerate(names):
            if view not in imgs:
                continue
            places[view] = place = self._place(k + 1, imgs[view].shape)
            x0, y0, s = place
            h, w = (int(round(v * s)) for v in imgs[view].shape[:2])
            canvas[y0:y0 + h, x0:x0 + w] = cv2.resize(
                imgs[view], (w, h), interpolation=cv2.INTER_NEAREST)
        self.set_image(canvas)
        shape = 'unreadable' if image is None else \
            f'{image.shape[1]}x{image.shape[0]}'
        self.draw_texts(f'{name} · {shape}', np.array([_GAP, 2.0]),
                        font_sizes=_FONT, colors='black')
        centres: Dict[str, Dict[int, np.ndarray]] = {}
        self._labels: List[np.ndarray] = []  # footprint names placed
        for view, place in places.items():
            colour = VIEW_COLOURS[names.index(view) % len(VIEW_COLOURS)]
            centres[view] = self._draw_view(view, imgs[view], metas[view],
                                            place, colour, ori_place)
        if self.lines:
            present = [n for n in names if n in centres]
            for a, b in zip(present[:-1], present[1:]):
                for key in sorted(set(centres[a]) & set(centres[b])):
                    ends = np.stack([centres[a][key], centres[b][key]])
                    self.draw_lines(ends[:, 0], ends[:, 1],
                                    colors=ID_COLOURS[key % len(ID_COLOURS)],
                                    line_widths=1)
        drawn = self.get_image()
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)

    def _draw_view(self, view: str, img: np.ndarray, ds, place, colour: str,
                   ori_place) -> Dict[int, np.ndarray]:
        """One view's panel and its footprint on the original; returns the
        canvas centres of its boxes by id (for the joining lines)."""
        h, w = img.shape[:2]
        boxes, ids = view_boxes(ds)
        grid = tile_grid(boxes, ids, w, h)
        has_ids = ids is not None and len(ids) == len(boxes) and not grid
        keys = ids if ids is not None and len(ids) == len(boxes) else \
            np.arange(len(boxes))
        frame = self._to_canvas(_corners((0, 0, w, h)), place)
        self.draw_bboxes(np.r_[frame[0], frame[2]], edge_colors=colour,
                         line_widths=3, alpha=1.0)
        what = f'{grid}x{grid} tile' if grid else \
            f'{len(boxes)} box{"es" if len(boxes) != 1 else ""}'
        flip = ' · flip' if ds.metainfo.get('flip') else ''
        self.draw_texts(f'{view} · {w}x{h} · {what}{flip}',
                        np.array([place[0], 2.0]), font_sizes=_FONT,
                        colors=colour)
        centres = {}
        if len(boxes):
            cboxes = self._to_canvas(boxes.reshape(-1, 2), place).reshape(
                -1, 4)
            if grid:
                self.notes.add('tiles')
                self.draw_bboxes(cboxes, edge_colors='white', line_widths=1)
            else:
                self.notes.add('ids' if has_ids else 'no_ids')
                self.draw_bboxes(cboxes, line_widths=2, alpha=1.0,
                                 edge_colors=[ID_COLOURS[int(k) % len(
                                     ID_COLOURS)] for k in keys])
            for box, key in zip(cboxes, keys):
                self._text(f'p{int(key)}' if grid else str(int(key)),
                           box[:2] + 1)
                if has_ids:
                    centres[int(key)] = (box[:2] + box[2:]) / 2
        if ori_place is not None:
            if grid:
                self._draw_tile_footprint(ds, boxes, colour, ori_place)
            else:
                self._draw_footprint(view, ds, w, h, boxes, colour,
                                     ori_place)
        return centres

    def _draw_footprint(self, view, ds, w, h, boxes, colour, place) -> None:
        inv = _inverse(ds.metainfo.get('homography_matrix'))
        if inv is None:
            self.notes.add('no_matrix')
            return
        poly = self._on_original(_apply(inv, _corners((0, 0, w, h))),
                                  place)
        self.draw_polygons(poly, edge_colors=colour, line_widths=2,
                           alpha=1.0)
        self.draw_points(poly[:1], colors=colour, sizes=np.array([30]))
        pos = poly.min(0) + 2
        while any(np.abs(pos - q).max() < 10 for q in self._labels):
            pos = pos + (0, 11)  # below the earlier views' names
        self._labels.append(pos)
        self._text(view, pos, colour)
        if len(boxes):
            mapped = [self._on_original(_apply(inv, _corners(b)), place)
                      for b in boxes]
            self.draw_bboxes(np.array([np.r_[m.min(0), m.max(0)]
                                       for m in mapped]),
                             edge_colors=colour, line_styles='--',
                             line_widths=1)

    def _draw_tile_footprint(self, ds, boxes, colour, place) -> None:
        """Each patch mapped back through its own
        ``jigsaw_homography_matrices[k]`` (the view's matrix maps into the
        crop frame, not the tile)."""
        mats = ds.metainfo.get('jigsaw_homography_matrices')
        if mats is None or len(mats) != len(boxes):
            self.notes.add('tile_no_meta')
            return
        for k, (box, mat) in enumerate(zip(boxes, np.asarray(mats))):
            inv = _inverse(mat)
            if inv is not None:
                poly = self._on_original(_apply(inv, _corners(box)), place)
                self.draw_polygons(poly, edge_colors=colour, line_widths=1)
                self._text(str(k), poly.mean(0), colour, valign='center',
                           halign='center')

    def legend(self) -> str:
        """What the rows drawn so far show, for a caption."""
        n = self.notes
        note = ('boxes: colour = instances_ids (same object in every view)'
                if 'ids' in n else 'boxes: no instances_ids, colour = index '
                '(not a match)' if 'no_ids' in n else
                'no object boxes in these views')
        if 'tiles' in n:
            note += '; tiles: p<k> = patch k' + (
                ' (not placed: pack jigsaw_homography_matrices in meta_keys)'
                if 'tile_no_meta' in n else ', placed on the original')
        left = ('left: each view\'s crop mapped back (inverse homography), '
                'dot = its top-left corner, dashed = its boxes')
        if 'no_matrix' in n:
            left += '; views without homography_matrix are not placed'
        return left + '\n' + note
