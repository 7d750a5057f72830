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

The OneDL fork of mmengine (``onedl-mmengine`` >= 0.10.8) loads through its
own ``mmengine.runner.checkpoint._safe_torch_load``, which (1) retries with
``weights_only=False`` when the safe load fails, so a crafted checkpoint's
pickled code runs, and (2) wraps the safe load in
``torch.serialization.safe_globals([...])``, whose exit *removes* those
globals from torch's process-wide allow-list, ours included (numpy arrays,
dtypes), so every later load fails; its list also holds the unrestricted
``builtins.getattr``. Importing mmselfdet replaces that function with
:func:`safe_torch_load`: always ``weights_only=True``, with our allow-list,
no fallback, no context manager.
"""
import pickle
from typing import List

import numpy as np
import torch

from mmselfdet.utils.io import atomic_write as shared_atomic_write

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
    """Allow-list :func:`safe_checkpoint_globals` for ``torch.load`` and make
    mmengine's loader use it (:func:`install_mmengine_load_guard`).

    Cheap and safe to call again: it re-adds entries that someone removed
    (a ``torch.serialization.safe_globals`` context listing the same classes
    removes them on exit). A no-op on torch versions without
    ``torch.serialization.add_safe_globals`` (< 2.4), where the old
    permissive default applies anyway.
    """
    global _REGISTERED
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return
    add(safe_checkpoint_globals())
    if not _REGISTERED:
        install_mmengine_load_guard()
    _REGISTERED = True


def safe_torch_load(file, map_location=None, weights_only=None):
    """``torch.load(..., weights_only=True)`` with our allow-list.

    It replaces ``mmengine.runner.checkpoint._safe_torch_load`` where
    mmengine has one (the OneDL fork). ``weights_only`` is accepted for
    signature compatibility and ignored: a checkpoint is never loaded with
    ``weights_only=False``, whatever the caller asks; one that needs more
    than tensors and :func:`safe_checkpoint_globals` raises
    ``pickle.UnpicklingError``.

    Args:
        file: A path or a file-like object.
        map_location: As in :func:`torch.load`.
        weights_only: Ignored (always ``True``).

    Returns:
        The unpickled object.
    """
    del weights_only
    register_checkpoint_safe_globals()  # in case someone removed entries
    return torch.load(file, map_location=map_location, weights_only=True)


def install_mmengine_load_guard() -> bool:
    """Route mmengine's internal ``_safe_torch_load`` (if any) through
    :func:`safe_torch_load`; returns whether mmengine has one.

    mmengine's loaders (``load_from_local``, ``load_from_http``...) look the
    function up in their module at call time, so replacing the module
    attribute covers ``load_checkpoint``, ``CheckpointLoader``,
    ``load_from`` and ``--resume``.
    """
    from mmengine.runner import checkpoint as mm_ckpt
    if not hasattr(mm_ckpt, '_safe_torch_load'):
        return False  # upstream mmengine: plain torch.load, safe by default
    mm_ckpt._safe_torch_load = safe_torch_load
    return True


# --------------------------------------------------------------- atomic saving
def atomic_write(path: str, data: bytes) -> None:
    """Write checkpoint bytes so that ``path`` is never seen half written.

    :func:`mmselfdet.utils.io.atomic_write` with ``fsync_dir=True``: a
    hidden temporary file beside ``path`` is written, ``fsync``-ed and
    renamed over ``path`` (:func:`os.replace`), then the folder entry is
    ``fsync``-ed where the platform allows it, so the rename is durable too.
    A process killed at any point leaves either the old ``path`` or the new
    one, plus at worst a stray ``.NAME.*.tmp`` file that can be deleted by
    hand. Kept as this module's name because the atomic file backend looks
    it up here at call time (tests replace it to simulate a failed save).

    Args:
        path (str): Destination file.
        data (bytes): Content.
    """
    shared_atomic_write(path, data, fsync=True, fsync_dir=True)


def _atomic_local_backend():
    """An mmengine ``LocalBackend`` whose writes are :func:`atomic_write`."""
    from mmengine.fileio import LocalBackend

    class AtomicLocalBackend(LocalBackend):
        """Local file backend with atomic ``put`` / ``put_text``.

        Select it with ``backend_args=dict(backend='atomic_local')``.
        """

        def put(self, obj: bytes, filepath) -> None:
            atomic_write(str(filepath), obj)

        def put_text(self, obj: str, filepath, encoding: str = 'utf-8'):
            atomic_write(str(filepath), obj.encode(encoding))

    return AtomicLocalBackend


ATOMIC_BACKEND = 'atomic_local'


def register_atomic_backend() -> None:
    """Register :func:`atomic_write`'s file backend in mmengine as
    ``'atomic_local'`` (idempotent)."""
    from mmengine.fileio.backends import backends, register_backend
    if ATOMIC_BACKEND not in backends:
        register_backend(ATOMIC_BACKEND, _atomic_local_backend())
