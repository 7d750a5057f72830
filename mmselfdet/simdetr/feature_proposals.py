# Copyright (c) mmselfdet contributors. All rights reserved.
"""Files of feature-cluster proposals (stage A output).

``tools/detr_pretrain/make_proposals.py`` writes, for ``--out X.json``:

* ``X.json``: a proposal file of :mod:`mmselfdet.datasets.proposals`
  (boxes + coherence scores; readable by ``UnlabeledDataset``,
  ``tools/eval_proposals.py`` and the browsers); its ``info`` names the
  feature file and its shape;
* ``X.features.npy``: float16 ``(P, C)`` (``feature_dtype``; float32 files
  of earlier runs load too), row ``i`` the pooled feature of
  ``proposals[i]`` of the json, in file order (images by id, boxes by
  descending score). Plain ``.npy``, written row block by row block and
  memory-mapped by the reader (``allow_pickle=False``), so neither side
  holds the whole matrix in memory.
* ``X.shards/``: work in progress, one ``NNNNN.json`` + ``NNNNN.npy`` pair
  per chunk of images; a chunk whose json exists is done, so an
  interrupted run resumes by skipping it.

Images that could not be read are not in ``X.json``'s ``images``: they are
listed in ``info.skipped_images`` (``id``, ``file_name``, ``reason``). An
image id occurs once in the output; a merge that meets one twice stops.
"""
import glob
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Sequence, Set, Tuple

import numpy as np

from mmselfdet.datasets.proposals import save_proposal_file

__all__ = ['features_path', 'shard_dir', 'write_shard', 'done_shards',
           'merge_shards', 'load_feature_proposals']


def features_path(json_path: str) -> str:
    """``X.json`` -> ``X.features.npy``."""
    return osp.splitext(json_path)[0] + '.features.npy'


def shard_dir(json_path: str) -> str:
    """``X.json`` -> ``X.shards``."""
    return osp.splitext(json_path)[0] + '.shards'


def _atomic_save_npy(path: str, arr: np.ndarray) -> None:
    tmp = f'{path}.tmp-{os.getpid()}.npy'
    np.save(tmp, arr, allow_pickle=False)
    os.replace(tmp, path)


def write_shard(directory: str, index: int, images: Sequence[Mapping],
                results: Sequence[Mapping[str, np.ndarray]],
                skipped: Sequence[Mapping] = ()) -> None:
    """Write one chunk: the features first, the json (the 'done' mark) last.

    Args:
        directory (str): The shard folder.
        index (int): Chunk index.
        images (Sequence[dict]): ``id``, ``file_name``, ``width``,
            ``height`` per image.
        results (Sequence[dict]): Per image ``bboxes`` (M, 4), ``scores``
            (M,) and ``feats`` (M, C), numpy, best first.
        skipped (Sequence[dict]): Images of the chunk that could not be
            read: ``id``, ``file_name``, ``reason``. Defaults to none.
    """
    os.makedirs(directory, exist_ok=True)
    feats = [np.asarray(r['feats'], np.float32) for r in results]
    dims = {f.shape[1] for f in feats if len(f)}
    dim = dims.pop() if dims else 0
    arr = (np.concatenate([f for f in feats if len(f)]) if dim else
           np.zeros((0, 0), np.float32))
    base = osp.join(directory, f'{index:05d}')
    _atomic_save_npy(base + '.npy', arr)
    entries = [
        dict(image=dict(im), bboxes=np.asarray(r['bboxes']).tolist(),
             scores=np.asarray(r['scores']).tolist())
        for im, r in zip(images, results)
    ]
    tmp = f'{base}.json.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(dict(dim=dim, entries=entries,
                       skipped=[dict(im) for im in skipped]), f)
    os.replace(tmp, base + '.json')


def done_shards(directory: str) -> Set[int]:
    """Indices of the finished chunks in ``directory``."""
    return {int(osp.basename(p)[:5])
            for p in glob.glob(osp.join(directory, '[0-9]' * 5 + '.json'))}


def merge_shards(directory: str, out_json: str,
                 info: Mapping[str, Any],
                 feature_dtype: str = 'float16') -> Dict[str, int]:
    """Merge every chunk into ``out_json`` + its feature file.

    The feature file is filled one shard at a time through a memory map;
    only one shard's features are in memory at once.

    Args:
        directory (str): The shard folder.
        out_json (str): The proposal json to write (features beside it).
        info (dict): Provenance stored in the json's ``info``.
        feature_dtype (str): dtype of the feature file, 'float16'
            (default: half the disk and page cache; stage B's k-means
            works on normalised features, where float16's 3 significant
            digits do not change assignments) or 'float32'.

    Returns:
        dict: ``images``, ``proposals``, ``feature_dim``, ``skipped`` (images
        that could not be read, listed in the json's
        ``info.skipped_images``).

    Raises:
        ValueError: An image id occurs twice (names the shards), or a
            shard's features do not match its boxes. Nothing is written.
    """
    images: List[dict] = []
    skipped: List[dict] = []
    by_id: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    rows_by_id: Dict[int, Tuple[int, int, int]] = {}  # shard, start, n
    seen: Dict[int, str] = {}
    dim = 0

    def _once(img_id: int, where: str) -> None:
        if img_id in seen:
            raise ValueError(
                f'{directory}: image id {img_id} occurs twice ({seen[img_id]}'
                f' and {where}); delete those shards to redo them')
        seen[img_id] = where

    for idx in sorted(done_shards(directory)):
        base = osp.join(directory, f'{idx:05d}')
        with open(base + '.json') as f:
            shard = json.load(f)
        arr_rows, arr_dim = _npy_shape(base + '.npy')
        for im in shard.get('skipped', []):
            _once(int(im['id']), f'{idx:05d}.json (skipped)')
            skipped.append(im)
        row = 0
        for e in shard['entries']:
            n = len(e['bboxes'])
            img_id = int(e['image']['id'])
            _once(img_id, f'{idx:05d}.json')
            images.append(e['image'])
            by_id[img_id] = (
                np.asarray(e['bboxes'], np.float64).reshape(-1, 4),
                np.asarray(e['scores'], np.float64))
            rows_by_id[img_id] = (idx, row, n)
            row += n
        if row != arr_rows:
            raise ValueError(f'shard {base}: {row} boxes but {arr_rows} '
                             'feature rows (delete the shard to redo it)')
        dim = dim or shard['dim'] or arr_dim
    if not images:
        raise ValueError(f'no finished shard in "{directory}"')
    order = sorted(by_id)
    sort_by_id, out_row, total = {}, {}, 0
    for img_id in order:  # the file's order: by id, descending score
        b, s = by_id[img_id]
        o = np.argsort(-s, kind='stable')
        by_id[img_id] = (b[o], s[o])
        sort_by_id[img_id] = o
        out_row[img_id] = total
        total += len(o)
    npy = features_path(out_json)
    info = dict(info, features_file=osp.basename(npy),
                feature_shape=[total, dim], feature_dtype=feature_dtype,
                skipped_images=sorted(skipped, key=lambda im: im['id']))
    tmp = f'{npy}.tmp-{os.getpid()}.npy'
    if total and dim:
        out = np.lib.format.open_memmap(tmp, mode='w+', dtype=feature_dtype,
                                        shape=(total, dim))  # (P, C)
        for idx in sorted(done_shards(directory)):
            arr = np.load(osp.join(directory, f'{idx:05d}.npy'),
                          mmap_mode='r', allow_pickle=False)
            for img_id, (shard, start, n) in rows_by_id.items():
                if shard == idx and n:
                    o = out_row[img_id]
                    out[o:o + n] = arr[start:start + n][sort_by_id[img_id]]
        out.flush()
        del out
    else:
        np.save(tmp, np.zeros((total, dim), feature_dtype),
                allow_pickle=False)
    os.replace(tmp, npy)
    save_proposal_file(out_json, images,
                       {i: dict(bboxes=by_id[i][0], scores=by_id[i][1])
                        for i in order}, info)
    return dict(images=len(images), proposals=total, feature_dim=dim,
                skipped=len(skipped))


def _npy_shape(path: str) -> Tuple[int, int]:
    """(rows, columns) of a 2-d ``.npy`` file, read from its header."""
    arr = np.load(path, mmap_mode='r', allow_pickle=False)
    return arr.shape[0], (arr.shape[1] if arr.ndim == 2 else 0)


def load_feature_proposals(json_path: str,
                           mmap: bool = True) -> Tuple[dict, np.ndarray]:
    """The raw proposal json (``images``, ``proposals``, ``info``) and its
    aligned features, checked for agreement.

    Args:
        json_path (str): The proposal json of stage A.
        mmap (bool): Memory-map the feature file (read-only
            ``np.memmap``; pages are read when used) instead of loading
            it. Defaults to True.

    Raises:
        FileNotFoundError: The json or its feature file is missing.
        ValueError: The counts disagree (the files belong to other runs).
    """
    if not osp.isfile(json_path):
        raise FileNotFoundError(f'proposal file "{json_path}" does not exist')
    with open(json_path) as f:
        obj = json.load(f)
    name = obj.get('info', {}).get('features_file')
    if not name:
        raise KeyError(f'"{json_path}" has no info.features_file: not written '
                       'by tools/detr_pretrain/make_proposals.py')
    npy = osp.join(osp.dirname(json_path), name)
    if not osp.isfile(npy):
        raise FileNotFoundError(f'feature file "{npy}" of "{json_path}" does '
                                'not exist')
    feats = np.load(npy, mmap_mode='r' if mmap else None,
                    allow_pickle=False)
    if len(feats) != len(obj['proposals']):
        raise ValueError(f'"{json_path}" has {len(obj["proposals"])} '
                         f'proposals but "{npy}" has {len(feats)} feature '
                         'rows')
    return obj, feats
