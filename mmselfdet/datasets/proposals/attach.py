# Copyright (c) mmselfdet contributors. All rights reserved.
"""Attaching a proposal file to the data infos of a dataset.

Used by :class:`~mmselfdet.datasets.UnlabeledDataset` (``proposal_file``);
the class doc there describes the policies. Each kept info gets
``proposals = dict(bboxes=float32 (N, 4) x1y1x2y2, scores=float32 (N,))``,
best first, which mmdet's ``LoadProposals`` reads unchanged.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from .filters import FILTER_KEYS, filter_proposals
from .format import load_proposal_file
from .images import image_size_from_header

__all__ = ['MISSING_PROPOSAL_POLICIES', 'attach_proposals', 'whole_image_size']

MISSING_PROPOSAL_POLICIES = ('whole_image', 'error', 'skip')


def whole_image_size(info: dict, entry: Optional[dict]) -> Tuple[int, int]:
    """(width, height) for the whole-image box: the proposal file's entry,
    the data info (COCO json), or the image header, in that order."""
    if entry is not None and entry['width'] > 0 and entry['height'] > 0:
        return entry['width'], entry['height']
    if info.get('width') and info.get('height'):
        return info['width'], info['height']
    try:
        return image_size_from_header(info['img_path'])
    except ValueError as e:
        raise ValueError(
            f'UnlabeledDataset: need the size of "{info["img_path"]}" for '
            f'its whole-image proposal but cannot read it ({e})') from e


def attach_proposals(infos: List[dict],
                     path: str,
                     image_key: Callable[[dict], Hashable],
                     by_id: bool = False,
                     proposal_filter: Optional[dict] = None,
                     missing_proposals: str = 'whole_image',
                     max_absent_ratio: float = 0.5
                     ) -> Tuple[List[dict], Dict[str, Any]]:
    """Attach ``proposals`` to each info of ``infos`` (in place).

    Args:
        infos: Data infos (``img_path``, ``img_id``, optional ``width`` /
            ``height``).
        path: The proposal file.
        image_key: How an info is looked up in the file (image id or
            relative name).
        by_id: Infos are matched by COCO image id: an id whose file name
            differs from the info's (by base name) means the file was made
            for other images, which is refused.
        proposal_filter: Keyword arguments of :func:`filter_proposals`;
            None keeps the file's boxes.
        missing_proposals: ``'whole_image'``, ``'error'`` or ``'skip'``.
        max_absent_ratio: Largest fraction of the infos that may be absent
            from the file.

    Returns:
        tuple: The kept infos and the statistics (``proposal_stats``).

    Raises:
        ValueError: The file does not match the infos, or a policy refuses
            them; the message names the file and examples.
    """
    table, _ = load_proposal_file(path)
    policy = missing_proposals
    removed = {k: 0 for k in FILTER_KEYS}
    boxes_in = boxes_kept = clipped = 0
    absent, empty_file, empty_filter, renamed = [], [], [], []
    kept = []
    for info in infos:
        entry = table.get(image_key(info))
        if (entry is not None and by_id and osp.basename(entry['file_name'])
                != osp.basename(info['img_path'])):
            renamed.append((info['img_id'], info['img_path'],
                            entry['file_name']))
        bboxes = scores = None
        if entry is None:
            absent.append(info['img_path'])
        elif len(entry['bboxes']) == 0:
            empty_file.append(info['img_path'])
        else:
            bboxes, scores = entry['bboxes'], entry['scores']
            boxes_in += len(bboxes)
            if proposal_filter is not None:
                try:
                    bboxes, scores, st = filter_proposals(
                        bboxes, scores, (entry['width'], entry['height']),
                        **proposal_filter)
                except ValueError as e:
                    raise ValueError(
                        f'UnlabeledDataset: proposal file "{path}", image '
                        f'{entry["file_name"]!r}: {e}') from e
                clipped += st['clipped']
                for k in FILTER_KEYS:
                    removed[k] += st[k]
                if len(bboxes) == 0:
                    empty_filter.append(info['img_path'])
                    bboxes = None
        if bboxes is None:
            if policy == 'skip':
                continue
            if policy == 'whole_image':
                w, h = whole_image_size(info, entry)
                bboxes = np.array([[0, 0, w, h]], np.float32)
                scores = np.ones(1, np.float32)
        if bboxes is not None:
            boxes_kept += len(bboxes)
            info['proposals'] = dict(bboxes=bboxes, scores=scores)
        kept.append(info)
    if renamed:
        raise ValueError(
            f'UnlabeledDataset: proposal file "{path}" was made for other '
            f'images: {len(renamed)} image id(s) name another file there, '
            f'e.g. (id, image, name in the file) {renamed[:3]}; COCO '
            'datasets match proposals by image id, so generate the file '
            'from the same COCO json')
    if len(absent) > max_absent_ratio * len(infos):
        raise ValueError(
            f'UnlabeledDataset: proposal file "{path}" does not match '
            f'the dataset: {len(absent)} of {len(infos)} images '
            f'({100 * len(absent) / len(infos):.0f} %) are missing from '
            f'it, e.g. {absent[:3]} (max_absent_ratio={max_absent_ratio}); '
            'generate it for this image set with tools/generate_proposals.py')
    no_props = len(absent) + len(empty_file) + len(empty_filter)
    if policy == 'error' and no_props:
        parts = [f'{len(v)} {what}, e.g. {v[:3]}'
                 for what, v in (('absent from the file', absent),
                                 ('with an empty list', empty_file),
                                 ('emptied by proposal_filter',
                                  empty_filter)) if v]
        raise ValueError(
            f'UnlabeledDataset: proposal file "{path}" gives no proposal '
            f'for {no_props} of {len(infos)} images: ' + '; '.join(parts) +
            " (missing_proposals='error'; use 'whole_image' or 'skip')")
    stats = dict(
        proposal_file=path,
        images=len(infos),
        absent=len(absent),
        empty_in_file=len(empty_file),
        empty_after_filter=len(empty_filter),
        whole_image=no_props if policy == 'whole_image' else 0,
        skipped=no_props if policy == 'skip' else 0,
        boxes_in_file=boxes_in,
        boxes_kept=boxes_kept,
        clipped=clipped,
        **{f'removed_{k}': v for k, v in removed.items()})
    if not kept:
        raise ValueError(
            f'UnlabeledDataset: every image was skipped: proposal file '
            f'"{path}" gives none of the {len(infos)} images a proposal')
    filt = ('' if proposal_filter is None else ', removed by filter: ' +
            ' '.join(f'{k}={removed[k]}' for k in FILTER_KEYS))
    print_log(
        f'UnlabeledDataset: proposals from {path}: {len(infos)} images, '
        f'{stats["absent"]} absent from the file, {stats["empty_in_file"]} '
        f'empty in the file, {stats["empty_after_filter"]} emptied by the '
        f'filter -> {no_props} handled by {policy!r}; boxes {boxes_in} in '
        f'the file -> {boxes_kept} kept '
        f'({boxes_kept / max(len(kept), 1):.1f} per image){filt}',
        logger='current')
    return kept, stats
