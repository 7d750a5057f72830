# Copyright (c) mmselfdet contributors. All rights reserved.
"""Count and list the image files that the training pipeline skipped."""
import logging
import os.path as osp
import shutil
from collections import Counter
from typing import Iterator, List, Tuple

from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmselfdet.registry import HOOKS


def iter_pipeline_transforms(dataset) -> Iterator[object]:
    """Every top-level transform of ``dataset``'s pipeline and of the
    datasets it wraps (``.dataset``, ``.datasets``)."""
    stack, seen = [dataset], set()
    while stack:
        ds = stack.pop()
        if ds is None or id(ds) in seen:
            continue
        seen.add(id(ds))
        yield from getattr(getattr(ds, 'pipeline', None), 'transforms', [])
        stack.append(getattr(ds, 'dataset', None))
        stack.extend(getattr(ds, 'datasets', None) or [])


@HOOKS.register_module()
class BadImageSummaryHook(Hook):
    """Log, at the end of each epoch and of training, how many image files
    the training pipeline skipped and which.

    Reads the reports of every ``LoadImageRobust(on_error='skip')`` in the
    train dataset (each dataloader worker appends its skips to a file, see
    :class:`~mmselfdet.datasets.transforms.LoadImageRobust`), gathers them
    from all ranks and logs on rank 0 one line per summary: skips in the
    epoch, skips in total and distinct files, with the first ``max_listed``
    files and their reasons; the full list (file, reason, times skipped) is
    written to ``<log_dir>/bad_images.tsv`` (the temporary reports are removed
    after the run). An iteration-based loop's
    epoch is one pass of the dataloader (``len(train_dataloader)``
    iterations). Without a skipping loader the hook does nothing.

    Args:
        max_listed (int): Files named in each log line. Defaults to 20.
    """

    priority = 'LOW'

    def __init__(self, max_listed: int = 20) -> None:
        self.max_listed = int(max_listed)
        self._loaders: List[object] = []
        self._reported = 0

    def before_train(self, runner) -> None:
        from mmselfdet.datasets.transforms import LoadImageRobust
        self._loaders = [
            t for t in iter_pipeline_transforms(
                runner.train_dataloader.dataset)
            if isinstance(t, LoadImageRobust) and t.report_dir is not None
        ]

    def _records(self) -> List[Tuple[str, str]]:
        mine = [r for t in self._loaders for r in t.skipped_files()]
        return [r for rank in all_gather_object(mine) for r in rank]

    def summarize(self, runner, when: str) -> None:
        """Log the summary (call on every rank: it gathers)."""
        if not self._loaders:
            return
        records = self._records()
        new, self._reported = len(records) - self._reported, len(records)
        if not is_main_process():
            return
        reasons = dict(records)
        counts = Counter(p for p, _ in records)
        path = osp.join(runner.log_dir, 'bad_images.tsv')
        if counts:
            with open(path, 'w', encoding='utf-8') as f:
                for p, n in sorted(counts.items()):
                    f.write(f'{p}\t{reasons[p]}\t{n}\n')
        listed = '; '.join(f'{p} ({reasons[p]})'
                           for p in sorted(counts)[:self.max_listed])
        more = len(counts) - self.max_listed
        print_log(
            f'BadImageSummaryHook: {when}: {new} image loads skipped, '
            f'{len(records)} in total, {len(counts)} distinct bad files'
            + (f': {listed}' if counts else '')
            + (f' ... and {more} more' if more > 0 else '')
            + (f' (full list: {path})' if counts else ''),
            logger='current',
            level=logging.WARNING if counts else logging.INFO)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._loaders and isinstance(runner.train_loop,
                                        IterBasedTrainLoop):
            per_epoch = max(len(runner.train_dataloader), 1)
            done = runner.iter + 1
            if done % per_epoch == 0:
                self.summarize(runner, f'epoch {done // per_epoch} '
                               f'(iteration {done})')

    def after_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            self.summarize(runner, f'epoch {runner.epoch + 1}')

    def after_train(self, runner) -> None:
        self.summarize(runner, f'end of training (iteration {runner.iter})')

    def after_run(self, runner) -> None:
        """Remove the loaders' temporary report folders (the list stays in
        ``bad_images.tsv``)."""
        for t in self._loaders:
            shutil.rmtree(t.report_dir, ignore_errors=True)
