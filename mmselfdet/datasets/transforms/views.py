# Copyright (c) mmselfdet contributors. All rights reserved.
"""Packing of views made together by a view maker.

Two ways to build views:

* independent views of one image (MoCo): mmdet's ``MultiBranch``, one
  pipeline per view applied to a copy of the loaded image;
* coupled views (SoCo, InsLoc, object-aware crops), where one transform
  (a *view maker*) decides all views at once because they share boxes. A
  view maker writes ``results['views'] = {name: view_results}``; each view is
  an ordinary mmdet results dict (``img``, ``img_shape``, ``gt_bboxes``,
  ``gt_instances_ids``, ``homography_matrix``...). :class:`PackViews` then runs
  each view's own pipeline (pixel augmentations, flip, ``PackViewInputs``)
  and returns exactly what ``MultiBranch`` returns, so the data preprocessor
  and the algorithms do not care which way the views were made.

Boxes correspond across views through ``gt_instances_ids`` (box with id 3 in
view 1 is the same object as id 3 in view 2), which every geometric
transform keeps aligned with ``gt_bboxes``; :class:`PackViewInputs` packs
them as ``gt_instances.instances_ids``.
"""
import copy
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmdet.datasets.transforms import PackDetInputs
from mmdet.structures.bbox import HorizontalBoxes

from mmselfdet.registry import TRANSFORMS

# keys of the source image every view inherits unless the maker set them
_SHARED_KEYS = ('img_path', 'img_id', 'ori_shape')


def make_view(results: dict,
              img: np.ndarray,
              matrix: np.ndarray,
              boxes: Optional[np.ndarray] = None,
              ids: Optional[np.ndarray] = None) -> dict:
    """Build one view dict for a view maker.

    Args:
        results (dict): The source image's results (for shared keys).
        img (np.ndarray): The view image (H, W, C).
        matrix (np.ndarray): 3x3 homography, source image -> view, composed
            with the source's own ``homography_matrix`` if it has one.
        boxes (np.ndarray, optional): (N, 4) x1y1x2y2 boxes in the view.
        ids (np.ndarray, optional): (N,) correspondence ids; default
            ``arange(N)``.
    """
    boxes = np.zeros((0, 4), np.float32) if boxes is None else \
        np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    ids = np.arange(n, dtype=np.int64) if ids is None else \
        np.asarray(ids, np.int64)
    if len(ids) != n:
        raise ValueError(f'{n} boxes but {len(ids)} ids')
    prev = results.get('homography_matrix')
    if prev is not None:
        matrix = matrix @ prev
    view = {k: results[k] for k in _SHARED_KEYS if k in results}
    view.update(
        img=img,
        img_shape=img.shape[:2],
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.zeros(n, np.int64),
        gt_ignore_flags=np.zeros(n, bool),
        gt_instances_ids=ids,
        homography_matrix=np.asarray(matrix, np.float32))
    return view


def map_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (N, 4) x1y1x2y2 boxes through a 3x3 homography (exact for the
    axis-aligned scale / translate / flip matrices views use; the bounding
    box of the mapped corners otherwise)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return boxes.astype(np.float32)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([
        np.stack([x1, y1]), np.stack([x2, y1]),
        np.stack([x1, y2]), np.stack([x2, y2])
    ])  # (4, 2, N)
    pts = np.concatenate([corners, np.ones((4, 1, len(boxes)))], axis=1)
    mapped = np.einsum('ij,kjn->kin', np.asarray(matrix, np.float64), pts)
    xy = mapped[:, :2] / mapped[:, 2:3]  # (4, 2, N)
    out = np.stack([xy[:, 0].min(0), xy[:, 1].min(0),
                    xy[:, 0].max(0), xy[:, 1].max(0)], axis=1)
    return out.astype(np.float32)


VIEW_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                  'flip_direction', 'homography_matrix')


@TRANSFORMS.register_module()
class PackViewInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` for one view of a pretraining pipeline.

    Differences: ``gt_instances_ids`` (the cross-view correspondence of
    boxes) is packed as ``gt_instances.instances_ids``, SoCo's
    ``gt_instances_pairs`` (the view pair of each box, ``SoCoViews``) as
    ``gt_instances.instances_pairs``, and the default ``meta_keys`` keep
    ``homography_matrix`` (source image -> view).
    """
    mapping_table = dict(PackDetInputs.mapping_table,
                         gt_instances_ids='instances_ids',
                         gt_instances_pairs='instances_pairs')

    def __init__(self, meta_keys: Sequence[str] = VIEW_META_KEYS) -> None:
        super().__init__(meta_keys=tuple(meta_keys))


@TRANSFORMS.register_module()
class PackViews(BaseTransform):
    """Run each view's pipeline on the views of a view maker and pack them.

    Required Keys:

    - views (dict[str, dict]): written by a view maker

    Output: ``{'inputs': {view: Tensor}, 'data_samples': {view:
    DetDataSample}}``, the format of mmdet's ``MultiBranch``.

    Args:
        pipelines (dict[str, list[dict]]): One pipeline per view name; each
            ends with :class:`PackViewInputs`. The same list may be used for
            several views.
    """

    def __init__(self, pipelines: Dict[str, Sequence[dict]]) -> None:
        if not pipelines:
            raise ValueError('PackViews needs at least one view pipeline')
        self.pipelines = {name: Compose(list(p))
                          for name, p in pipelines.items()}

    def transform(self, results: dict) -> Optional[dict]:
        views = results.get('views')
        if not isinstance(views, dict) or not views:
            raise KeyError(
                'PackViews needs results["views"] from a view maker earlier in '
                f'the pipeline; got keys {sorted(results)} for '
                f'{results.get("img_path", "an image")}')
        missing = [v for v in self.pipelines if v not in views]
        unused = [v for v in views if v not in self.pipelines]
        if missing or unused:
            raise KeyError(
                f'PackViews: the view maker made {sorted(views)}, pipelines '
                f'are given for {sorted(self.pipelines)} (missing '
                f'{missing}, without pipeline {unused})')
        out: Dict[str, dict] = {'inputs': {}, 'data_samples': {}}
        for name, pipeline in self.pipelines.items():
            view = views[name]
            for k in _SHARED_KEYS:
                if k not in view and k in results:
                    view[k] = copy.deepcopy(results[k])
            packed = pipeline(view)
            if packed is None:
                return None
            out['inputs'][name] = packed['inputs']
            out['data_samples'][name] = packed['data_samples']
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(views={list(self.pipelines)})'


