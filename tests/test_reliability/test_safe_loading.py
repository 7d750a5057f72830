# Copyright (c) mmselfdet contributors. All rights reserved.
"""Safe loading: checkpoints load with torch's ``weights_only=True`` and our
allow-list; a checkpoint carrying pickled code is refused, also through
mmengine's loaders, and no tool turns the safety off."""
import glob
import os
import os.path as osp
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from ..utils import REPO


class _RunsCode:
    """Unpickling this calls ``os.system`` (what a malicious file does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _ReachesGetattr:
    """Unpickling this asks ``builtins.getattr`` for ``os.system`` through
    an allowed class (numpy's ndarray), the route around an allow-list."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


@pytest.mark.parametrize('payload', ['code', 'getattr'])
def test_checkpoint_with_pickled_callable_is_refused(tmp_path, payload):
    marker = tmp_path / 'pwned'
    evil = _RunsCode(str(marker)) if payload == 'code' else _ReachesGetattr()
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'meta': {'x': evil}},
               path)
    with pytest.raises(pickle.UnpicklingError) as e:
        torch.load(path, map_location='cpu')
    assert 'weights_only' in str(e.value) or 'getattr' in str(e.value)
    # mmengine's loaders (load_from / --resume / export) go through it too
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


def test_what_mmengine_checkpoints_hold_still_loads(tmp_path):
    buf = HistoryBuffer()
    buf.update(1.5)
    ok = {'state_dict': {'w': torch.ones(2)},
          'meta': {'seed': np.int64(3), 'arr': np.arange(3),
                   'rng': np.random.get_state()},
          'message_hub': {'log_scalars': {'train/loss': buf}}}
    path = str(tmp_path / 'ok.pth')
    torch.save(ok, path)
    back = torch.load(path, map_location='cpu')
    assert back['message_hub']['log_scalars']['train/loss'].mean() == 1.5
    assert back['meta']['seed'] == 3


def test_no_blanket_weights_only_false():
    """No call in the package or the tools turns the safety off."""
    call = re.compile(r'weights_only\s*=\s*False\s*[,)]')
    hits = []
    for f in glob.glob(osp.join(REPO, 'mmselfdet', '**', '*.py'),
                       recursive=True) + glob.glob(
                           osp.join(REPO, 'tools', '**', '*.py'),
                           recursive=True):
        with open(f) as fh:
            if call.search(fh.read()):
                hits.append(osp.relpath(f, REPO))
    assert not hits, hits
