# Copyright (c) mmselfdet contributors. All rights reserved.
"""One sharded, resumable run of a proposal generator over an image set.

The generators (``tools/generate_proposals.py``: selective search;
``tools/heatmap_proposals.py``: the heat map) only say how to process a
batch of images; :func:`run_sharded` does the rest:

* the image list (sorted by id) is cut into shards of ``shard_size``
  images, shard ``k`` being ``images[k * shard_size:(k + 1) * shard_size]``;
* each shard is cut into batches of ``batch_size`` images, processed in
  order in this process or by ``workers`` processes (``multiprocessing``,
  ordered ``imap``, so the records are the same for any number of workers);
* a finished shard is written atomically to ``PARTS/shard-00007.json``
  (``PARTS`` = :func:`parts_dir` of the output) with the run's ``header``
  (everything that decides the results);
* a rerun skips the shards already written (resume) and refuses parts
  written with another header; a progress line is printed per shard.

The caller writes the final file from the records (:func:`write_records`)
and then removes the parts (:func:`remove_parts`). A run can also be split
over machines (``--shard i/n``: every n-th image, written to
:func:`shard_output`) and the files merged with :func:`merge_shard_files`.

A record is a json-serialisable dict per image: ``id``, ``file_name``,
``width``, ``height``, ``bboxes`` (x1y1x2y2 lists), ``scores`` (list or
None: rank scores), and optionally ``failed`` (None or the reason the image
could not be processed) and ``stats`` (counts summed over the run).
"""
from __future__ import annotations

import datetime
import json
import multiprocessing as mp
import os
import os.path as osp
import shutil
import sys
import time
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from mmselfdet.utils.io import atomic_write

from .format import save_proposal_file, write_proposal_json

__all__ = [
    'run_sharded', 'parts_dir', 'remove_parts', 'write_records',
    'created_stamp', 'dumps', 'sum_stats', 'shard_output', 'merge_shard_files'
]

Record = Dict[str, Any]
BatchFn = Callable[[List[Dict[str, Any]]], List[Record]]


def dumps(obj: Any) -> str:
    """Canonical json (sorted keys, fixed separators, no NaN)."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'),
                      allow_nan=False)


def created_stamp() -> str:
    """UTC time stamp of a file; ``SOURCE_DATE_EPOCH`` (the
    reproducible-builds convention) fixes it."""
    epoch = os.environ.get('SOURCE_DATE_EPOCH')
    t = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
         if epoch else datetime.datetime.now(datetime.timezone.utc))
    return t.strftime('%Y-%m-%dT%H:%M:%SZ')


def parts_dir(out: str) -> str:
    """``X.json`` -> ``X.parts`` (the folder of finished shards)."""
    stem = out[:-5] if out.endswith('.json') else out
    return f'{stem}.parts'


def remove_parts(directory: str) -> None:
    """Remove the finished shards once the final file is written."""
    shutil.rmtree(directory, ignore_errors=True)


def _part_path(directory: str, shard: int) -> str:
    return osp.join(directory, f'shard-{shard:05d}.json')


def _load_part(path: str, header: Mapping[str, Any],
               images: Sequence[Mapping[str, Any]]) -> Optional[List[Record]]:
    """The records of a finished shard, or None when it must be redone."""
    try:
        with open(path, encoding='utf-8') as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:  # not written by run_sharded
        print(f'warning: ignoring unreadable part "{path}" ({e}); the shard '
              'is redone', file=sys.stderr)
        return None
    if obj.get('header') != json.loads(dumps(header)):
        raise SystemExit(
            f'error: "{path}" is a finished shard of a run with other '
            'arguments or inputs; delete its folder or rerun with the same '
            'arguments')
    records = obj.get('records', [])
    ids = [r.get('id') for r in records]
    if ids != [im['id'] for im in images] or any(
            r.get('file_name') != im['file_name']
            for r, im in zip(records, images)):
        raise SystemExit(
            f'error: "{path}" holds other images than this input gives its '
            'shard; delete its folder')
    return records


def _init(init_worker: Optional[Callable[[], None]]) -> None:
    if init_worker is not None:
        init_worker()


def run_sharded(images: Sequence[Dict[str, Any]],
                process_batch: BatchFn,
                directory: str,
                header: Mapping[str, Any],
                shard_size: int = 256,
                batch_size: int = 1,
                workers: int = 1,
                init_worker: Optional[Callable[[], None]] = None,
                desc: str = 'proposals') -> List[Record]:
    """Run ``process_batch`` over ``images`` in resumable shards.

    Args:
        images: Entries of :func:`~mmselfdet.datasets.proposals.list_images`
            (``id``, ``file_name``, ``path``, ...), in their final order.
        process_batch: Batch of images -> one record per image, in order
            (see the module doc). With ``workers > 1`` it must be picklable
            (a module-level function or a ``functools.partial`` of one).
        directory: The parts folder (:func:`parts_dir` of the output).
        header: Json-serialisable settings that decide the results; parts
            of another header are refused.
        shard_size: Images per shard (the unit of resuming).
        batch_size: Images per call of ``process_batch``.
        workers: Processes; 1 runs in this process.
        init_worker: Called once in each process that processes batches
            (e.g. ``cv2.setNumThreads(1)``); its effect on this process
            lasts after the run when ``workers == 1``.
        desc: Name in the progress lines.

    Returns:
        list[dict]: One record per image, in the order of ``images``.

    Raises:
        SystemExit: A finished shard of another run (header or images).
        ValueError: ``process_batch`` returned the wrong records.
    """
    if shard_size < 1 or batch_size < 1 or workers < 1:
        raise ValueError('shard_size, batch_size and workers must be >= 1, '
                         f'got {shard_size}, {batch_size}, {workers}')
    images = list(images)
    num_shards = (len(images) + shard_size - 1) // shard_size
    shards = [images[k * shard_size:(k + 1) * shard_size]
              for k in range(num_shards)]
    done: Dict[int, List[Record]] = {}
    if osp.isdir(directory):
        for k, shard in enumerate(shards):
            path = _part_path(directory, k)
            if osp.isfile(path):
                records = _load_part(path, header, shard)
                if records is not None:
                    done[k] = records
    todo = [k for k in range(num_shards) if k not in done]
    total = sum(len(shards[k]) for k in todo)
    print(f'{desc}: {len(images)} images in {num_shards} shard(s) of '
          f'{shard_size}: {len(done)} done in {directory}, {len(todo)} to do '
          f'({total} images); {workers} worker(s)', file=sys.stderr)
    jobs = [(k, shard[i:i + batch_size]) for k in todo
            for shard in (shards[k], )
            for i in range(0, len(shard), batch_size)]
    pool = None
    if workers > 1 and len(jobs) > 1:
        pool = mp.Pool(workers, initializer=_init, initargs=(init_worker, ))
        results = pool.imap(process_batch, [b for _, b in jobs], chunksize=1)
    else:
        _init(init_worker)
        results = map(process_batch, [b for _, b in jobs])
    start = time.perf_counter()
    processed = 0
    pending: Dict[int, List[Record]] = {}
    ok = False
    try:
        for (k, batch), records in zip(jobs, results):
            if len(records) != len(batch) or any(
                    r.get('id') != im['id'] for r, im in zip(records, batch)):
                raise ValueError(f'{desc}: the batch function returned '
                                 'records of other images')
            for r in records:
                if r.get('failed'):
                    print(f'warning: {r["failed"]}; recorded without '
                          'proposals', file=sys.stderr)
            pending.setdefault(k, []).extend(records)
            processed += len(batch)
            if len(pending[k]) == len(shards[k]):
                done[k] = pending.pop(k)
                atomic_write(_part_path(directory, k),
                             dumps(dict(header=header, shard=k,
                                        records=done[k])) + '\n')
                secs = time.perf_counter() - start
                eta = secs / processed * (total - processed)
                print(f'{desc}: shard {k + 1}/{num_shards} written; '
                      f'{processed}/{total} images in {secs:.1f} s, '
                      f'eta {eta:.0f} s', file=sys.stderr)
        ok = True
    finally:
        if pool is not None:
            if ok:
                pool.close()
                pool.join()
            else:
                pool.terminate()
    return [r for k in range(num_shards) for r in done[k]]


def sum_stats(records: Sequence[Record]) -> Dict[str, int]:
    """The records' ``stats`` summed key by key."""
    total: Dict[str, int] = {}
    for r in records:
        for k, v in (r.get('stats') or {}).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def write_records(path: str, records: Sequence[Record],
                  info: Mapping[str, Any]) -> Dict[str, Any]:
    """Write the final proposal file of a run's records.

    ``info`` gets ``created`` (:func:`created_stamp`), ``failed_images``
    (sorted file names of the failed records), ``num_images`` and
    ``num_proposals``.

    Returns:
        dict: The info written.
    """
    failed = sorted(r['file_name'] for r in records if r.get('failed'))
    n_props = sum(len(r['bboxes']) for r in records)
    info = dict(info, created=created_stamp(), failed_images=failed,
                num_images=len(records), num_proposals=n_props)
    save_proposal_file(
        path,
        [dict(id=r['id'], file_name=r['file_name'], width=r['width'],
              height=r['height']) for r in records],
        {r['id']: dict(bboxes=np.asarray(r['bboxes'],
                                         np.float64).reshape(-1, 4),
                       scores=None if r.get('scores') is None else
                       np.asarray(r['scores'], np.float64))
         for r in records if r['bboxes']}, info)
    return info


def shard_output(out: str, shard: Optional[Tuple[int, int]]) -> str:
    """``OUT.json`` -> ``OUT.shard-i-of-n.json`` (unchanged without shard)."""
    if shard is None:
        return out
    stem = out[:-5] if out.endswith('.json') else out
    return f'{stem}.shard-{shard[0]}-of-{shard[1]}.json'


def merge_shard_files(out: str, shard_files: Sequence[str],
                      sum_keys: Sequence[str] = ('filter_stats', )
                      ) -> Dict[str, Any]:
    """Merge the files of a run split with ``--shard i/n`` into ``out``.

    A shard file (:func:`shard_output`) is a finished proposal file whose
    ``info['shard']`` is ``'i/n'``; the ``info`` of all shards must agree
    except for the keys that differ per file (stamps, counts, the
    ``sum_keys`` statistics, which are summed).

    The numbers are copied, not re-parsed into arrays, so the result is
    byte-identical to an unsharded run with the same arguments.

    Returns:
        dict: The merged file's info.

    Raises:
        SystemExit: Shards of different runs, missing or repeated shards, or
            an image in two shards.
    """
    per_file = {'created', 'failed_images', 'num_images', 'num_proposals',
                'shard', *sum_keys}
    objs = []
    for path in shard_files:
        try:
            with open(path, encoding='utf-8') as f:
                objs.append((path, json.load(f)))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f'error: cannot read shard "{path}": {e}') from e
    common = None
    shards = {}
    for path, obj in objs:
        info = obj.get('info', {})
        if 'shard' not in info:
            raise SystemExit(f'error: "{path}" is not a shard file')
        params = {k: v for k, v in info.items() if k not in per_file}
        if common is None:
            common = params
        elif params != common:
            diff = sorted(k for k in set(params) | set(common)
                          if params.get(k) != common.get(k))
            raise SystemExit(f'error: "{path}" comes from another run '
                             f'(differs in {diff})')
        if info['shard'] in shards:
            raise SystemExit(f'error: shard {info["shard"]} given twice '
                             f'({shards[info["shard"]]}, {path})')
        shards[info['shard']] = path
    n = int(next(iter(shards)).split('/')[1])
    missing = [f'{i}/{n}' for i in range(n) if f'{i}/{n}' not in shards]
    if missing or len(shards) != n:
        raise SystemExit(f'error: shards {missing} of {n} are missing')
    images, props, failed = [], [], []
    stats: Dict[str, Dict[str, int]] = {k: {} for k in sum_keys}
    seen: Dict[int, str] = {}
    for path, obj in objs:
        for im in obj['images']:
            if im['id'] in seen:
                raise SystemExit(f'error: image {im["id"]} is in both '
                                 f'"{seen[im["id"]]}" and "{path}"')
            seen[im['id']] = path
            images.append(im)
        props += obj['proposals']
        failed += obj['info'].get('failed_images', [])
        for key in sum_keys:
            for k, v in obj['info'].get(key, {}).items():
                stats[key][k] = stats[key].get(k, 0) + int(v)
    images.sort(key=lambda im: im['id'])
    order = {im['id']: k for k, im in enumerate(images)}
    # a stable sort keeps each image's own (descending score) order
    props.sort(key=lambda p: order[p['image_id']])
    info = dict(common, created=created_stamp(), failed_images=sorted(failed),
                num_images=len(images), num_proposals=len(props), **stats)
    write_proposal_json(out, images, props, info)
    return info
