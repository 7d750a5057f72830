# Copyright (c) mmselfdet contributors. All rights reserved.
# covers: mmselfdet/engine/checkpoint_hooks.py, mmselfdet/engine/checkpoint.py,
#   mmselfdet/utils/io.py
"""Atomic checkpoints: a kill or an error during a checkpoint write never
leaves the latest checkpoint unreadable."""
import io
import os
import os.path as osp
import signal
import stat
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend
from mmengine.runner import Runner

import mmselfdet.engine.checkpoint as ckpt_mod
import mmselfdet.utils.io as io_mod
from mmselfdet.engine.checkpoint import atomic_write

from ..utils import write_random_images
from .helpers import env, reliability_config

WRITER = r'''
import os, sys, time, torch
import mmengine.fileio.backends.local_backend as lb
from mmengine.runner.checkpoint import save_checkpoint
import mmselfdet  # registers the atomic backend
import mmselfdet.utils.io as uio  # the atomic writer
path, backend = sys.argv[1], sys.argv[2]
args = None if backend == 'local' else dict(backend=backend)
save_checkpoint({'version': 1, 'w': torch.ones(1_000_000)}, path,
                backend_args=args)


def slow(f):  # write half, tell the parent, wait to be killed
    real_write = f.write

    def write(data):
        real_write(data[:len(data) // 2])
        f.flush()
        print('mid-write', flush=True)
        time.sleep(600)
    f.write = write
    return f


real_open = open
uio.open = lambda *a, **k: slow(real_open(*a, **k))
lb.open = lambda *a, **k: slow(real_open(*a, **k))
save_checkpoint({'version': 2, 'w': torch.full((1_000_000, ), 2.0)}, path,
                backend_args=args)
'''


def _half_write(f):
    """Make ``f.write`` write half of its data, then fail like a kill."""
    real_write = f.write

    def write(data):
        real_write(data[:len(data) // 2])
        raise KeyboardInterrupt('simulated kill during the write')
    f.write = write
    return f


def test_atomic_write_interrupted_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'latest.pth')
    torch.save({'v': 1}, path)
    buf = io.BytesIO()
    torch.save({'v': 2}, buf)
    real_open = open
    monkeypatch.setattr(io_mod, 'open',
                        lambda *a, **k: _half_write(real_open(*a, **k)),
                        raising=False)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, buf.getvalue())
    monkeypatch.undo()
    assert torch.load(path)['v'] == 1
    assert os.listdir(tmp_path) == ['latest.pth']  # no temporary left
    # the same interruption on mmengine's stock local backend corrupts it
    import mmengine.fileio.backends.local_backend as lb
    monkeypatch.setattr(lb, 'open',
                        lambda *a, **k: _half_write(real_open(*a, **k)),
                        raising=False)
    with pytest.raises(KeyboardInterrupt):
        LocalBackend().put(buf.getvalue(), path)
    monkeypatch.undo()
    with pytest.raises(Exception):
        torch.load(path)


def test_checkpoint_write_syncs_data_rename_then_folder(tmp_path,
                                                       monkeypatch):
    """A checkpoint write (the atomic backend's put) is the shared writer
    with fsync_dir: the data is fsync-ed, renamed over the file, then the
    folder is fsync-ed so the rename survives a power loss; the shared
    writer's default skips the folder sync."""
    from mmengine.runner.checkpoint import save_checkpoint
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = 'folder' if stat.S_ISDIR(os.fstat(fd).st_mode) else 'file'
        events.append(f'fsync {kind}')
        real_fsync(fd)

    def replace(src, dst):
        events.append(f'replace {osp.basename(dst)}')
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    path = str(tmp_path / 'ckpts' / 'iter_1.pth')
    save_checkpoint({'w': torch.arange(3)}, path,
                    backend_args=dict(backend='atomic_local'))
    assert events == ['fsync file', 'replace iter_1.pth', 'fsync folder']
    events.clear()
    io_mod.atomic_write(str(tmp_path / 'ckpts' / 'a.json'), '{}')
    assert events == ['fsync file', 'replace a.json']
    monkeypatch.undo()
    assert torch.equal(torch.load(path)['w'], torch.arange(3))
    assert sorted(os.listdir(tmp_path / 'ckpts')) == ['a.json', 'iter_1.pth']


@pytest.mark.parametrize('backend', ['atomic_local', 'local'])
def test_sigkill_during_checkpoint_write(tmp_path, backend):
    """SIGKILL a process in the middle of rewriting a checkpoint: with the
    atomic backend the previous version still loads; with mmengine's stock
    local backend the file is left half written."""
    path = str(tmp_path / 'latest.pth')
    proc = subprocess.Popen([sys.executable, '-c', WRITER, path, backend],
                            stdout=subprocess.PIPE, env=env())
    lines = []
    while True:  # until the handshake or EOF (a blank line is not EOF)
        line = proc.stdout.readline()
        lines.append(line.strip())
        if not line or lines[-1] == b'mid-write':
            break
    assert lines[-1] == b'mid-write', lines
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    left = sorted(os.listdir(tmp_path))
    if backend == 'atomic_local':
        assert torch.load(path)['version'] == 1
        assert len(left) == 2 and left[0].endswith('.tmp')  # the victim
    else:
        assert left == ['latest.pth']
        with pytest.raises(Exception):
            torch.load(path)


@pytest.mark.parametrize('hook', ['SafeCheckpointHook', 'CheckpointHook'])
def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch,
                                                   hook):
    """The save at iteration 4 dies mid-write (max_keep_ckpts=1). Ours keeps
    iter_2.pth, points last_checkpoint at it and resumes from it; stock
    mmengine deleted iter_2.pth before writing and has nothing left."""
    imgs = write_random_images(str(tmp_path / 'imgs'), n=8)
    work = str(tmp_path / 'work')
    cfg = Config.fromfile(reliability_config(imgs, work, max_iters=4,
                                             ckpt_interval=2))
    cfg.default_hooks.checkpoint.update(type=hook, max_keep_ckpts=1)

    def dies_on_iter_4(obj, filepath, *args, **kwargs):
        if str(filepath).endswith('iter_4.pth'):
            with open(filepath, 'wb') as f:  # what a kill leaves
                f.write(b'PK\x03\x04 half')
            raise KeyboardInterrupt('simulated kill during the save')
        return real_put(obj, filepath)

    if hook == 'SafeCheckpointHook':
        real_put = ckpt_mod.atomic_write

        def dies_on_iter_4_atomic(filepath, data):
            if str(filepath).endswith('iter_4.pth'):
                raise KeyboardInterrupt('simulated kill during the save')
            return real_put(filepath, data)
        monkeypatch.setattr(ckpt_mod, 'atomic_write', dies_on_iter_4_atomic)
    else:
        real_put = LocalBackend.put.__get__(LocalBackend())
        monkeypatch.setattr(LocalBackend, 'put',
                            lambda self, obj, p: dies_on_iter_4(obj, p))
    with pytest.raises(KeyboardInterrupt):
        Runner.from_cfg(cfg).train()
    monkeypatch.undo()
    last = open(osp.join(work, 'last_checkpoint')).read().strip()
    if hook == 'CheckpointHook':
        assert not osp.exists(osp.join(work, 'iter_2.pth'))
        with pytest.raises(Exception):
            torch.load(last)
        return
    assert last.endswith('iter_2.pth')
    assert torch.load(last)['meta']['iter'] == 2
    cfg.resume = True
    cfg.experiment_name = 'resumed'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4 and osp.isfile(osp.join(work, 'iter_4.pth'))
    assert not osp.exists(osp.join(work, 'iter_2.pth'))  # pruned after
