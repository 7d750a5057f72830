# Copyright (c) mmselfdet contributors. All rights reserved.
"""Two CPU processes (gloo): the queue receives keys from both ranks and
shuffle-BN round-trips across ranks. The end of a distributed run (tools
train.py / test.py through ``run_launched``): the Runner is gone before the
barrier and ``destroy_process_group``, and the group is destroyed also when
the run raised."""
import importlib.util
import os
import os.path as osp
import socket
import sys
import weakref
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    # mmselfdet (and with it torch.distributed.nn, whose functions take
    # group=WORLD as a default argument) is imported before the group
    # exists: imported after, those defaults keep the group alive past
    # destroy_process_group and its gloo threads outlive the interpreter
    # (this test, with that order, once died with SIGABRT: "terminate
    # called without an active exception")
    from mmselfdet.engine.dist import (_live_gloo_threads, finish_launch,
                                       init_cpu_dist_if_needed)
    from mmselfdet.models.utils import (FeatureQueue, batch_shuffle,
                                        batch_unshuffle)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    assert init_cpu_dist_if_needed('pytorch', backend='gloo')
    succeeded = False
    try:
        q = FeatureQueue(length=16, feat_dim=2)
        keys = torch.full((3, 2), float(rank + 1))  # rank 0 -> 1s, 1 -> 2s
        q.enqueue(keys)
        torch.manual_seed(rank)  # different seeds: the perm is broadcast
        x = torch.arange(4, dtype=torch.float).view(4, 1) + 10 * rank
        shuffled, idx = batch_shuffle(x)
        back = batch_unshuffle(shuffled, idx)
        result = dict(buffer=q.buffer.clone(), ptr=q.ptr.clone(),
                      shuffled=shuffled, back=back, x=x)
        succeeded = True
    finally:
        finish_launch(succeeded)
    result['gloo_threads_left'] = _live_gloo_threads()
    torch.save(result, os.path.join(out_dir, f'rank{rank}.pth'))


def test_queue_gathers_keys_from_both_ranks(tmp_path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    # the group really was freed: no gloo thread outlives the teardown
    assert r0['gloo_threads_left'] == r1['gloo_threads_left'] == []
    for r in (r0, r1):
        assert int(r['ptr'][0]) == 6  # 3 keys x 2 ranks
        head = r['buffer'][0, :6]
        assert torch.equal(head[:3], torch.ones(3, 2))
        assert torch.equal(head[3:], torch.full((3, 2), 2.0))
        # the round trip restores each rank's own batch
        assert torch.equal(r['back'], r['x'])
    # both ranks wrote the same gathered keys (the random initial rest of
    # the queue is made equal by DDP's buffer broadcast in real training)
    assert torch.equal(r0['buffer'][0, :6], r1['buffer'][0, :6])
    # samples really moved across ranks: the union is the global batch
    union = torch.cat([r0['shuffled'], r1['shuffled']]).view(-1).sort()[0]
    assert union.tolist() == [0, 1, 2, 3, 10, 11, 12, 13]


class _FakeRunner:
    """Records its calls; holds itself in a cycle like mmengine's Runner and
    returns itself from ``train`` / ``test`` (Runner.train returns the DDP
    model, which holds the process group)."""
    instances = []

    def __init__(self, calls, fail):
        self.calls, self.fail, self.me = calls, fail, self
        _FakeRunner.instances.append(weakref.ref(self))

    def train(self):
        self.calls.append('train')
        if self.fail:
            raise RuntimeError('injected failure')
        return self

    test = train


@pytest.fixture
def fake_dist(monkeypatch):
    """An initialised process group whose barrier / destroy record, in
    order, whether every _FakeRunner was already freed."""
    calls = []

    def record(name):
        def fn(*args, **kwargs):
            freed = all(r() is None for r in _FakeRunner.instances)
            calls.append((name, 'runner freed' if freed else 'runner alive'))
        return fn

    _FakeRunner.instances = []
    # only the teardown sees the fake group (mmengine keeps the real state)
    monkeypatch.setattr(
        'mmselfdet.engine.dist.torch_dist',
        SimpleNamespace(is_available=lambda: True,
                        is_initialized=lambda: True,
                        barrier=record('barrier'),
                        destroy_process_group=record('destroy')))
    return calls


def test_run_launched_frees_the_runner_then_barrier_then_destroy(fake_dist):
    from mmselfdet.engine.dist import run_launched
    run_launched(lambda: _FakeRunner(fake_dist, fail=False), 'train')
    assert fake_dist == ['train', ('barrier', 'runner freed'),
                         ('destroy', 'runner freed')]


def test_run_launched_destroys_the_group_when_the_run_raises(fake_dist):
    from mmselfdet.engine.dist import run_launched
    with pytest.raises(RuntimeError, match='injected failure'):
        run_launched(lambda: _FakeRunner(fake_dist, fail=True), 'test')
    # no barrier: the other ranks never reach theirs (it would hang)
    assert [c if isinstance(c, str) else c[0] for c in fake_dist] == [
        'train', 'destroy']


def test_run_launched_destroys_the_group_when_building_raises(fake_dist):
    from mmselfdet.engine.dist import run_launched

    def build():
        raise KeyError('bad config')

    with pytest.raises(KeyError, match='bad config'):
        run_launched(build, 'train')
    assert fake_dist == [('destroy', 'runner freed')]


@pytest.mark.parametrize('fail', [False, True], ids=['success', 'raises'])
def test_train_tool_ends_the_process_group(fake_dist, monkeypatch, tmp_path,
                                           fail):
    """tools/train.py itself: after success barrier + destroy with the
    Runner (and the model train() returned) freed; after an error destroy
    and the error propagates."""
    from ..utils import REPO, tiny_moco_config, write_random_images
    imgs = write_random_images(str(tmp_path / 'imgs'), n=2)
    cfg = tiny_moco_config(imgs, str(tmp_path / 'work'))
    spec = importlib.util.spec_from_file_location(
        'train_tool_under_test', osp.join(REPO, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool.Runner, 'from_cfg',
                        lambda cfg: _FakeRunner(fake_dist, fail))
    monkeypatch.setattr(sys, 'argv', ['train.py', cfg])
    if fail:
        with pytest.raises(RuntimeError, match='injected failure'):
            tool.main()
        assert [c if isinstance(c, str) else c[0] for c in fake_dist] == [
            'train', 'destroy']
    else:
        tool.main()
        assert fake_dist == ['train', ('barrier', 'runner freed'),
                             ('destroy', 'runner freed')]


def test_a_failing_destroy_does_not_hide_the_runs_error(fake_dist,
                                                        monkeypatch):
    from mmselfdet.engine import dist as launch

    def destroy():
        raise RuntimeError('connection closed by peer')

    monkeypatch.setattr(launch.torch_dist, 'destroy_process_group', destroy)
    with pytest.raises(RuntimeError, match='injected failure'):
        with pytest.warns(UserWarning, match='connection closed by peer'):
            launch.run_launched(lambda: _FakeRunner(fake_dist, fail=True))


def test_a_surviving_gloo_thread_is_reported(fake_dist, monkeypatch):
    """The toy 2-process tests look for this warning in each run."""
    from mmselfdet.engine import dist as launch
    monkeypatch.setattr(launch, '_live_gloo_threads',
                        lambda: ['gloo_tcp_loop', 'pt_gloo_runloop'])
    with pytest.warns(UserWarning, match='2 gloo threads .* are still alive '
                      'after destroy_process_group'):
        launch.run_launched(lambda: _FakeRunner(fake_dist, fail=False))
