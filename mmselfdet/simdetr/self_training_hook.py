# Copyright (c) mmselfdet contributors. All rights reserved.
"""The former way to run self-training rounds: a hook on a stock loop.

**Deprecated**: use ``train_cfg=dict(type='SelfTrainingLoop', ...)`` or
``'SelfTrainingEpochLoop'`` (:mod:`mmselfdet.simdetr.self_training`), which
rebuild their dataloader through ``runner.build_dataloader``. This hook
restarts a stock loop's dataloader by writing private state of mmengine's
loop, sampler and mmdet's batch sampler; it is kept, registered under its
name, for configs that still name it (configs derived by
``tools/pretrain.py``, which replaces ``train_cfg``) and will go once they
do not. It refuses to run under a self-training loop (rounds would run
twice).
"""
import gc
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmselfdet.registry import HOOKS
from .relabel import SelfTrainingRounds

__all__ = ['SelfTrainingHook']


@HOOKS.register_module()
class SelfTrainingHook(Hook):
    """Relabel the training set with the detector every ``interval``
    (deprecated; see the module doc).

    Args:
        by_epoch (bool): Count ``interval`` in epochs. Defaults to False.
        **kwargs: The arguments of
            :class:`~mmselfdet.simdetr.relabel.SelfTrainingRounds`.
    """

    priority = 'NORMAL'

    def __init__(self, by_epoch: bool = False, **kwargs) -> None:
        self.by_epoch = by_epoch
        self.rounds = SelfTrainingRounds(**kwargs)

    # the settings, under the names of the former hook
    @property
    def round(self) -> int:
        return self.rounds.round

    @property
    def ann_file(self) -> Optional[str]:
        return self.rounds.ann_file

    @ann_file.setter
    def ann_file(self, path: str) -> None:
        self.rounds.ann_file = path

    def before_train(self, runner) -> None:
        if hasattr(runner.train_loop, 'rounds'):
            raise RuntimeError(
                'SelfTrainingHook: the train loop runs the self-training '
                'rounds itself; remove the hook from custom_hooks')
        ds = runner.train_dataloader.dataset
        assert hasattr(ds, 'ann_file') and hasattr(ds, 'full_init'), (
            'SelfTrainingHook: the training dataset must be a COCO-style '
            f'dataset with an ann_file, got {type(ds).__name__}')
        loader = runner.train_dataloader
        assert not (loader.num_workers > 0 and loader.persistent_workers), (
            'SelfTrainingHook: set train_dataloader.persistent_workers=False '
            '(persistent workers would keep the old round\'s labels)')
        if self.rounds.ann_file is None:
            self.rounds.ann_file = ds.ann_file

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and \
                (runner.iter + 1) % self.rounds.interval == 0 \
                and runner.iter + 1 < runner.max_iters:
            self._next_round(runner)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and \
                (runner.epoch + 1) % self.rounds.interval == 0 \
                and runner.epoch + 1 < runner.max_epochs:
            self._next_round(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['self_training'] = \
            self.rounds.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('self_training')
        # only a resumed run continues its round; load_from starts afresh
        if state is None or not getattr(runner, '_resume', False):
            return
        self.rounds.round = int(state['round'])
        if self.rounds.round > 0:
            if not osp.isfile(state['ann_file']):
                raise FileNotFoundError(
                    f'SelfTrainingHook: the checkpoint resumes round '
                    f'{self.rounds.round} on "{state["ann_file"]}", which '
                    'does not exist')
            self._reload(runner, state['ann_file'])
        print_log(f'SelfTrainingHook: resumed round {self.rounds.round} '
                  f'({state["ann_file"]})', logger='current')

    def _next_round(self, runner) -> None:
        if self.rounds.round + 1 >= self.rounds.num_rounds:
            return
        ds = runner.train_dataloader.dataset
        path = self.rounds.next_round(runner, ds, runner.iter + 1)
        self._reload(runner, path)

    def _reload(self, runner, path: str) -> None:
        """Point the training dataset at ``path`` and restart its loader
        (private state of a stock loop: the reason for the loops)."""
        ds = runner.train_dataloader.dataset
        n = len(ds)
        ds.ann_file = path
        ds._fully_initialized = False
        ds.full_init()
        if len(ds) != n:
            raise RuntimeError(
                f'SelfTrainingHook: the dataset had {n} images and has '
                f'{len(ds)} with "{path}"; use filter_cfg=dict('
                'filter_empty_gt=False) so rounds keep every image')
        self.rounds.ann_file = path
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop
            it_type = type(loop.dataloader_iterator)
            loop.dataloader_iterator = None
            gc.collect()
            dl = loop.dataloader
            for sampler in (getattr(dl, 'sampler', None),
                            getattr(dl.batch_sampler, 'sampler', None)):
                if hasattr(sampler, '_indices_of_rank'):
                    sampler.indices = sampler._indices_of_rank()
            for bucket in getattr(dl.batch_sampler, '_aspect_ratio_buckets',
                                  []):
                del bucket[:]
            loop.dataloader_iterator = it_type(dl)
