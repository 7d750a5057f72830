# Copyright (c) mmselfdet contributors. All rights reserved.
"""Exact resume with the OneDL fork's data iterator: onedl-mmengine
(>= 0.10.11) creates the dataloader iterator at the first batch and resumes
by advancing the sampler without loading the trained batches; our
``replay_trained_data_on_resume`` (called by ``SafeCheckpointHook``) makes
the resumed batches and the main-process RNG those of an uninterrupted run.
On upstream mmengine a stand-in with the fork's behaviour is tested; on the
fork, its own iterator as well."""
import itertools
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import InfiniteSampler, worker_init_fn
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader, Dataset

from mmselfdet.engine.checkpoint_hooks import replay_trained_data_on_resume


class _ForkLikeIterator(_InfiniteDataloaderIterator):
    """The fork's resume behaviour on any mmengine: the torch iterator is
    made at the first batch; ``skip_iter`` moves the sampler, loads
    nothing."""

    def __init__(self, dataloader):
        self._dataloader = dataloader
        self._iterator = None
        self._epoch = 0

    def __next__(self):
        if self._iterator is None:
            self._iterator = iter(self._dataloader)
        return next(self._iterator)

    def skip_iter(self, num_iters):
        sampler = self._dataloader.sampler
        sampler.indices = itertools.islice(
            sampler._indices_of_rank(),
            num_iters * self._dataloader.batch_size, None)
        self._iterator = None


ITERATORS = [_ForkLikeIterator]
if hasattr(_InfiniteDataloaderIterator, 'skip_iter'):  # the fork itself
    ITERATORS.append(_InfiniteDataloaderIterator)


class _Augmented(Dataset):
    """Index plus two random 'augmentation' draws made in the worker."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.tensor([float(i), np.random.rand(), torch.rand(1).item()],
                            dtype=torch.float64)


def _loader():
    ds = _Augmented()
    return DataLoader(ds, batch_size=2, sampler=InfiniteSampler(ds, seed=0),
                      num_workers=1,
                      worker_init_fn=partial(worker_init_fn, num_workers=1,
                                             rank=0, seed=0))


@pytest.mark.parametrize('cls', ITERATORS, ids=lambda c: c.__name__)
def test_resumed_batches_and_rng_equal_the_uninterrupted_run(cls):
    k = 3  # trained iterations before the checkpoint
    torch.manual_seed(0)
    ref_it = cls(_loader())
    for _ in range(k):
        next(ref_it)
    saved = torch.get_rng_state()  # what SafeCheckpointHook saves at k
    ref = [next(ref_it) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), saved)

    torch.manual_seed(123)  # a new process: another state until restored
    it = cls(_loader())
    runner = SimpleNamespace(
        iter=k, train_loop=SimpleNamespace(dataloader_iterator=it))
    replay_trained_data_on_resume(runner)  # SafeCheckpointHook.before_train
    torch.set_rng_state(saved)  # ... then restores the RNG states
    it.skip_iter(k)  # what the fork's IterBasedTrainLoop.run calls
    got = [next(it) for _ in range(2)]
    for a, b in zip(ref, got):
        # same images (index) with the same augmentation draws
        assert torch.equal(a, b), (a, b)
    # nothing drew from the restored main-process RNG
    assert torch.equal(torch.get_rng_state(), saved)


def test_noop_without_resume_or_with_fast_forward():
    it = _ForkLikeIterator(_loader())
    for iter_, fast in ((0, False), (3, True)):
        loop = SimpleNamespace(dataloader_iterator=it,
                               fast_forward_on_resume=fast)
        replay_trained_data_on_resume(SimpleNamespace(iter=iter_,
                                                      train_loop=loop))
        assert it._iterator is None and 'skip_iter' not in vars(it)
