# Copyright (c) mmselfdet contributors. All rights reserved.
"""Loading mmengine checkpoints under torch >= 2.6 (``weights_only=True``).

torch 2.6 made ``torch.load(..., weights_only=True)`` the default. mmengine
0.10.7 calls ``torch.load`` without the argument, and its checkpoints hold,
besides tensors, the message hub's ``HistoryBuffer`` objects and numpy
arrays / scalars in ``meta``; the restricted unpickler rejects them and
``load_from`` / ``--resume`` fail. Instead of turning the safety off
(``weights_only=False`` would run arbitrary pickled code from a downloaded
checkpoint), we allow-list exactly the classes mmengine writes. Importing
mmselfdet does this once.
"""
import pickle
from typing import List

import numpy as np
import torch

_REGISTERED = False


def _numpy_globals() -> List[object]:
    """numpy classes / functions that pickled arrays and scalars use."""
    out: List[object] = [np.ndarray, np.dtype]
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        for fn in ('_reconstruct', 'scalar'):
            if hasattr(mod, fn):
                out.append(getattr(mod, fn))
    # numpy >= 1.25 pickles dtypes through their own classes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    # scalar types themselves (np.float64, np.int64, ...)
    out += [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
            np.uint16, np.uint32, np.uint64, np.float16, np.float32,
            np.float64]
    return out


def history_buffer_getattr(obj: object, name: str) -> object:
    """A ``getattr`` restricted to the statistics methods of mmengine's
    ``HistoryBuffer``.

    A pickled ``HistoryBuffer`` stores its statistics methods (``min``,
    ``mean``...), which pickle writes as ``builtins.getattr(HistoryBuffer,
    'min')``. Allowing the
    real ``getattr`` would let a checkpoint reach any attribute of any
    allowed object, i.e. run code; this one resolves only public methods of a
    ``HistoryBuffer`` and refuses everything else.
    """
    from mmengine.logging import HistoryBuffer
    cls = obj if isinstance(obj, type) else type(obj)
    if (issubclass(cls, HistoryBuffer) and not name.startswith('_')
            and callable(getattr(cls, name, None))):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({cls.__name__}, {name!r}); only '
        'statistics methods of mmengine HistoryBuffer are allowed')


def safe_checkpoint_globals() -> List[object]:
    """Everything beyond tensors that an mmengine checkpoint contains."""
    from mmengine.logging import HistoryBuffer
    return _numpy_globals() + [
        HistoryBuffer,
        (history_buffer_getattr, 'builtins.getattr'),
        (history_buffer_getattr, '__builtin__.getattr'),
    ]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`safe_checkpoint_globals` for ``torch.load``.

    Idempotent; a no-op on torch versions without
    ``torch.serialization.add_safe_globals`` (< 2.4), where the old
    permissive default applies anyway.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(safe_checkpoint_globals())
    _REGISTERED = True
