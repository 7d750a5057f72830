# Copyright (c) mmselfdet contributors. All rights reserved.
"""The checkpoint hook that makes checkpoints crash-safe and resumes exact."""
import glob
import logging
import os
import os.path as osp
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import (all_gather_object, get_rank, get_world_size,
                           is_main_process)
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mmselfdet.registry import HOOKS

from ..checkpoint import ATOMIC_BACKEND, atomic_write, register_atomic_backend

# `backend_args=dict(backend='atomic_local')` works once mmselfdet is imported
register_atomic_backend()


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that a kill cannot leave without a
    readable latest checkpoint.

    Three changes, same arguments:

    * checkpoint files are written to a temporary file in the same folder and
      renamed (:func:`~mmselfdet.engine.checkpoint.atomic_write`, through the
      ``'atomic_local'`` file backend) when ``out_dir`` is local and no
      ``backend_args`` are given;
    * the ``last_checkpoint`` pointer file is replaced atomically too (stock
      mmengine truncates and rewrites it in place);
    * old checkpoints beyond ``max_keep_ckpts`` are deleted **after** the new
      one and the pointer are on disk (stock mmengine deletes first, so with
      ``max_keep_ckpts=1`` a kill during the save leaves no checkpoint);
    * with ``save_rng_state=True`` (default) every rank's torch (CPU and
      CUDA), numpy and python RNG states are gathered into the checkpoint
      (``rng_states``) and restored when the run resumes, so randomness
      drawn in the training processes (shuffle-BN permutations, random
      proposals, dropout) continues as if the run had not stopped.

    Stray temporaries of an interrupted save are removed before training.

    Data randomness needs no state: mmengine's iteration-based loop replays
    the data of the trained iterations on resume (on the OneDL fork, which
    skips the sampler instead, :func:`replay_trained_data_on_resume` makes it
    replay), and dataloader workers are
    seeded from the seed, the rank and the worker id, so workers redraw the
    same augmentations. (With ``num_workers=0`` the transforms draw from the
    main process's RNG, which the replay advances from the restored state:
    augmentations after a resume then differ from an uninterrupted run.)
    RNG states are restored in ``before_train`` (mmengine re-seeds after
    loading the checkpoint); ``load_from`` without resume restores nothing,
    nor does a different world size (with a warning).

    Args:
        save_rng_state (bool): Save and restore RNG states. Defaults to
            True.
        *args, **kwargs: mmengine ``CheckpointHook``'s arguments.
    """

    def __init__(self, *args, backend_args: Optional[dict] = None,
                 save_rng_state: bool = True, **kwargs) -> None:
        out_dir = kwargs.get('out_dir')
        local = out_dir is None or '://' not in str(out_dir)
        if (backend_args is None and local
                and kwargs.get('file_client_args') is None):
            register_atomic_backend()
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, backend_args=backend_args, **kwargs)
        self.save_rng_state = save_rng_state
        self._rng_states: Optional[list] = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        replay_trained_data_on_resume(runner)  # before the RNG restore
        self._restore_rng_states(runner)
        if not is_main_process() or '://' in str(self.out_dir):
            return
        for tmp in glob.glob(osp.join(str(self.out_dir), '.*.tmp')):
            os.remove(tmp)
            print_log(f'SafeCheckpointHook: removed {tmp} (left by an '
                      'interrupted save)', logger='current',
                      level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        stale: List[int] = []
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if self.save_rng_state:  # every rank takes part; rank 0 saves
            self._rng_states = all_gather_object(get_rng_state())
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                     str(self.last_ckpt).encode('utf-8'))
        for old in stale:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.save_rng_state and self._rng_states is not None:
            checkpoint['rng_states'] = self._rng_states
        self._rng_states = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._rng_states = checkpoint.get('rng_states')

    def _restore_rng_states(self, runner) -> None:
        states, self._rng_states = self._rng_states, None
        if not self.save_rng_state or states is None or runner.iter == 0:
            return
        if len(states) != get_world_size():
            print_log(f'SafeCheckpointHook: the checkpoint holds RNG states '
                      f'of {len(states)} processes, this run has '
                      f'{get_world_size()}; RNG states are not restored',
                      logger='current', level=logging.WARNING)
            return
        set_rng_state(states[get_rank()])


def replay_trained_data_on_resume(runner) -> None:
    """Make a resumed iteration-based run load the data of the trained
    iterations again, as upstream mmengine does, on the OneDL fork too.

    onedl-mmengine (>= 0.10.11) resumes by advancing the sampler without
    loading data (``skip_iter``) and creates the dataloader iterator lazily,
    at the first batch. Both break exactness: the workers' RNG streams are
    not advanced by the skipped batches (and the next batch goes to worker 0
    instead of the worker that had it), so augmentations differ; and the
    iterator, created after the RNG states are restored, draws its base seed
    from the restored torch RNG, shifting every later main-process draw.
    Here, before the RNG states are restored, the iterator is created and
    its ``skip_iter`` replaced by a replay of ``num_iters`` batches. A no-op
    on upstream mmengine (no ``skip_iter``), without a resume, and with the
    fork's ``fast_forward_on_resume=True`` (the user chose speed).

    Args:
        runner: The runner, in ``before_train``.
    """
    loop = runner.train_loop
    data_iter = getattr(loop, 'dataloader_iterator', None)
    if (runner.iter == 0 or data_iter is None
            or not hasattr(data_iter, 'skip_iter')
            or getattr(loop, 'fast_forward_on_resume', False)):
        return
    if (getattr(data_iter, '_iterator', 0) is None
            and hasattr(data_iter, '_dataloader')):
        data_iter._iterator = iter(data_iter._dataloader)

    def replay(num_iters: int) -> None:
        for _ in range(num_iters):
            next(data_iter)

    data_iter.skip_iter = replay


def get_rng_state() -> dict:
    """This process's torch (CPU and CUDA), numpy and python RNG states."""
    state = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(),
                 python=random.getstate())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
