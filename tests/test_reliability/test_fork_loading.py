# Copyright (c) mmselfdet contributors. All rights reserved.
"""Safe loading whatever mmengine does: the OneDL fork's loader
(``mmengine.runner.checkpoint._safe_torch_load`` in onedl-mmengine) falls
back to ``weights_only=False`` and its ``safe_globals`` context removes our
allow-list entries on exit; mmselfdet replaces it (and re-registers the
allow-list before each load). Upstream mmengine has no such loader: there a
stand-in with the fork's behaviour is installed and replaced."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner import checkpoint as mm_ckpt

from mmselfdet.engine.checkpoint import (install_mmengine_load_guard,
                                         register_checkpoint_safe_globals,
                                         safe_torch_load)


class _RunsCode:
    """Unpickling this runs a shell command (what a malicious file does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _fork_like_load(file, map_location=None, weights_only=None):
    """What onedl-mmengine 0.10.12's ``_safe_torch_load`` does."""
    try:
        with torch.serialization.safe_globals(
                [getattr, np.ndarray, np.dtype, HistoryBuffer]):
            return torch.load(file, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(file, map_location=map_location, weights_only=False)


def _evil(tmp_path, name='evil.pth'):
    marker = tmp_path / (name + '.ran')
    path = str(tmp_path / name)
    torch.save({'state_dict': {'w': torch.zeros(2)},
                'meta': {'x': _RunsCode(str(marker))}}, path)
    return path, marker


def _mmengine_like(tmp_path):
    buf = HistoryBuffer()
    buf.update(2.0)
    path = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'arr': np.arange(3), 'seed': np.int64(5)},
                'message_hub': {'log_scalars': {'loss': buf}}}, path)
    return path


def test_fork_like_loader_is_replaced(monkeypatch, tmp_path):
    monkeypatch.setattr(mm_ckpt, '_safe_torch_load', _fork_like_load,
                        raising=False)
    path, marker = _evil(tmp_path)
    mm_ckpt._safe_torch_load(path)  # the hole: the fallback runs the code
    assert marker.exists()
    marker.unlink()
    register_checkpoint_safe_globals()  # the context removed our entries

    assert install_mmengine_load_guard()
    assert mm_ckpt._safe_torch_load is safe_torch_load
    for weights_only in (None, False):
        with pytest.raises(pickle.UnpicklingError):
            mm_ckpt._safe_torch_load(path, 'cpu', weights_only=weights_only)
    assert not marker.exists()
    ok = mm_ckpt._safe_torch_load(_mmengine_like(tmp_path), 'cpu')
    assert ok['message_hub']['log_scalars']['loss'].mean() == 2.0


def test_this_mmengine_loads_through_the_guard():
    """On the fork, importing mmselfdet already replaced its loader."""
    if hasattr(mm_ckpt, '_safe_torch_load'):
        assert mm_ckpt._safe_torch_load is safe_torch_load


def test_every_mmengine_entry_point_refuses_pickled_code(tmp_path):
    path, marker = _evil(tmp_path)
    model = torch.nn.Linear(2, 1)
    for load in (lambda: CheckpointLoader.load_checkpoint(path, 'cpu'),
                 lambda: mm_ckpt._load_checkpoint(path, 'cpu'),
                 lambda: load_checkpoint(model, path, 'cpu')):
        with pytest.raises(pickle.UnpicklingError):
            load()
    assert not marker.exists()


def test_allow_list_survives_mmengine_loads_and_safe_globals(tmp_path):
    path = _mmengine_like(tmp_path)
    for _ in range(2):  # mmengine's own loader, twice
        CheckpointLoader.load_checkpoint(path, 'cpu')
    assert torch.load(path)['meta']['seed'] == 5  # plain load still works
    try:
        # a context listing the same classes removes them on exit (torch)
        with torch.serialization.safe_globals([np.ndarray, np.dtype]):
            pass
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
        # our loader puts them back before loading
        assert safe_torch_load(path)['meta']['arr'].tolist() == [0, 1, 2]
        assert torch.load(path)['meta']['seed'] == 5
    finally:
        register_checkpoint_safe_globals()
