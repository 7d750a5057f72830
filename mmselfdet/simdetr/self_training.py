# Copyright (c) mmselfdet contributors. All rights reserved.
"""Self-training rounds inside one training run (SimDETR stage D).

:class:`SelfTrainingLoop` (iterations) and :class:`SelfTrainingEpochLoop`
(epochs) are mmengine training loops: after every ``interval`` iterations
(epochs), until ``num_rounds`` rounds are reached, the current detector
relabels the training images (:class:`~mmselfdet.simdetr.relabel.
SelfTrainingRounds`) and the loop rebuilds its training dataloader
through the public ``runner.build_dataloader`` from the config's
``train_dataloader`` with ``dataset.ann_file`` set to the round's json
(fresh dataset, sampler, batch sampler and workers; nothing of the old
ones is reused). The round index and its json go into
``checkpoint['meta']['self_training']`` (:class:`SelfTrainingStateHook`,
registered by the loop), so ``--resume`` continues the right round on the
right labels; ``load_from`` alone starts at round 0.

The training dataset must be a COCO-style dataset whose length does not
depend on its boxes (``filter_cfg=dict(filter_empty_gt=False)``).
"""
import copy
import gc
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmselfdet.registry import LOOPS
from .relabel import SelfTrainingRounds
from .self_training_hook import SelfTrainingHook

__all__ = ['SelfTrainingLoop', 'SelfTrainingEpochLoop',
           'SelfTrainingStateHook', 'SelfTrainingRounds', 'SelfTrainingHook']


class SelfTrainingStateHook(Hook):
    """Stores the loop's round in checkpoints and hands a resumed one back.

    ``checkpoint['meta']['self_training'] = dict(round, ann_file)`` (the
    format of the former ``SelfTrainingHook``, so its checkpoints resume
    too). Registered by the loop itself; not meant for configs.
    """

    priority = 'NORMAL'

    def __init__(self, loop) -> None:
        self.loop = loop

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['self_training'] = \
            self.loop.rounds.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        if meta.get('self_training') is not None:
            # applied in the loop's run() only when the runner resumed
            # (the loop's counters then equal the checkpoint's)
            self.loop.resumed_state = (dict(meta['self_training']),
                                       meta.get('iter'), meta.get('epoch'))


class _SelfTrainingMixin:
    """What both loops share: settings, resume, dataloader rebuild."""

    def _init_rounds(self, runner, dataloader, kwargs: dict) -> None:
        if not isinstance(dataloader, dict):
            raise TypeError(
                f'{type(self).__name__}: needs the train_dataloader config '
                '(a dict) to rebuild the dataloader between rounds, got '
                f'{type(dataloader).__name__}')
        self.dataloader_cfg = copy.deepcopy(dataloader)
        self.rounds = SelfTrainingRounds(**kwargs)
        self.resumed_state: Optional[tuple] = None
        runner.register_hook(SelfTrainingStateHook(self))

    def _start_rounds(self, done: int, total: int) -> None:
        """Check the dataset, apply a resumed round, catch up the round
        that ``done`` units call for (a checkpoint saved right at a round
        boundary holds the previous round)."""
        ds = self.dataloader.dataset
        name = type(self).__name__
        if not (hasattr(ds, 'ann_file') and 'ann_file' in
                self.dataloader_cfg.get('dataset', {})):
            raise TypeError(
                f'{name}: train_dataloader.dataset must be a COCO-style '
                f'dataset with an ann_file, got {type(ds).__name__}')
        if self.rounds.ann_file is None:
            self.rounds.ann_file = ds.ann_file
        if self.resumed_state is not None:
            state, it, ep = self.resumed_state
            self.resumed_state = None
            if (it, ep) == (self.iter, self.epoch) and (it or ep):
                self.rounds.round = int(state['round'])
                if self.rounds.round > 0:
                    if not osp.isfile(state['ann_file']):
                        raise FileNotFoundError(
                            f'{name}: the checkpoint resumes round '
                            f'{self.rounds.round} on "{state["ann_file"]}",'
                            ' which does not exist')
                    self._rebuild(state['ann_file'])
                print_log(f'{name}: resumed round {self.rounds.round} '
                          f'({state["ann_file"]})', logger='current')
        self._sync_round(done, total)

    def _sync_round(self, done: int, total: int) -> None:
        """Relabel while the round is behind ``done`` units' round."""
        while done < total and \
                self.rounds.round < self.rounds.target_round(done):
            path = self.rounds.next_round(self.runner,
                                          self.dataloader.dataset, done)
            self._rebuild(path)

    def _rebuild(self, ann_file: str) -> None:
        """A new training dataloader on ``ann_file``, built by the runner
        from the config (seeded per round, so each round reshuffles)."""
        n = len(self.dataloader.dataset)
        cfg = copy.deepcopy(self.dataloader_cfg)
        cfg['dataset']['ann_file'] = ann_file
        randomness = self.runner.cfg.get('randomness') or {}
        self.dataloader = None
        gc.collect()  # close the old workers now, not at random later
        self.dataloader = self.runner.build_dataloader(
            cfg, seed=self.runner.seed + self.rounds.round,
            diff_rank_seed=randomness.get('diff_rank_seed', False))
        if len(self.dataloader.dataset) != n:
            raise RuntimeError(
                f'{type(self).__name__}: the dataset had {n} images and has '
                f'{len(self.dataloader.dataset)} with "{ann_file}"; use '
                'filter_cfg=dict(filter_empty_gt=False) so rounds keep every '
                'image')
        self.rounds.ann_file = ann_file


@LOOPS.register_module()
class SelfTrainingLoop(_SelfTrainingMixin, IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with self-training rounds every ``interval``
    iterations (module doc).

    Args:
        runner (Runner): The runner.
        dataloader (dict): The ``train_dataloader`` config.
        max_iters (int): Total iterations.
        val_begin (int): As ``IterBasedTrainLoop``. Defaults to 1.
        val_interval (int): As ``IterBasedTrainLoop``. Defaults to 1000.
        dynamic_intervals (list, optional): As ``IterBasedTrainLoop``.
        **self_training: The arguments of
            :class:`~mmselfdet.simdetr.relabel.SelfTrainingRounds`
            (``label_dataloader``, ``interval``, ``num_rounds``,
            ``selection``, ``score_thr``, ``nms_iou``, ``max_per_img``,
            ``class_agnostic_nms``, ``recluster``, ``seed``).
    """

    def __init__(self, runner, dataloader: dict, max_iters: int,
                 val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals=None, **self_training) -> None:
        self._init_rounds(runner, dataloader, self_training)
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)

    def run(self):
        self._start_rounds(self.iter, self.max_iters)
        return super().run()

    def run_iter(self, data_batch) -> None:
        super().run_iter(data_batch)
        self._sync_round(self.iter, self.max_iters)

    def _rebuild(self, ann_file: str) -> None:
        it_type = type(self.dataloader_iterator)
        self.dataloader_iterator = None  # its workers end with it
        super()._rebuild(ann_file)
        self.dataloader_iterator = it_type(self.dataloader)


@LOOPS.register_module()
class SelfTrainingEpochLoop(_SelfTrainingMixin, EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with self-training rounds every ``interval``
    epochs (module doc); arguments as :class:`SelfTrainingLoop` with
    ``max_epochs`` for ``max_iters``."""

    def __init__(self, runner, dataloader: dict, max_epochs: int,
                 val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals=None, **self_training) -> None:
        self._init_rounds(runner, dataloader, self_training)
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval, dynamic_intervals)

    def run(self):
        self._start_rounds(self.epoch, self.max_epochs)
        return super().run()

    def run_epoch(self) -> None:
        self._sync_round(self.epoch, self.max_epochs)
        super().run_epoch()
