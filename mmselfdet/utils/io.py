# Copyright (c) mmselfdet contributors. All rights reserved.
"""Atomic file writes: a reader sees the old file or the new one, never
half of one."""
import contextlib
import os
import os.path as osp
import uuid
from typing import IO, Iterator, Union

PathLike = Union[str, 'os.PathLike[str]']


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = 'w', fsync: bool = True,
                fsync_dir: bool = False, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` on a
    clean exit.

    The temporary file is in the same folder (so the rename stays on one
    file system) and hidden (``.NAME.XXXX.tmp``). On a clean exit the data
    is flushed (and ``fsync``-ed with ``fsync=True``) and renamed over
    ``path`` with :func:`os.replace` (atomic on POSIX and Windows); on an
    exception the temporary file is removed and ``path`` is left as it was.
    Missing parent folders are made. With ``fsync_dir=True`` the folder is
    ``fsync``-ed after the rename too (where the platform allows it), so
    the rename itself survives a power loss (checkpoints).

    Args:
        path: Destination file.
        mode: ``'w'`` (text) or ``'wb'`` (bytes). Defaults to 'w'.
        fsync: Force the data to disk before the rename. Defaults to True.
        fsync_dir: Force the folder entry to disk after the rename.
            Defaults to False.
        **kwargs: Passed to :func:`open` (e.g. ``encoding``, ``newline``).

    Yields:
        The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got "
                         f'{mode!r}')
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # a unique name opened exclusively (not mkstemp: the file keeps the
    # permissions a plain open() gives, umask applied)
    tmp = osp.join(directory, f'.{osp.basename(path)}.{os.getpid()}.'
                   f'{uuid.uuid4().hex[:8]}.tmp')
    if mode == 'w':
        kwargs.setdefault('encoding', 'utf-8')
    try:
        with open(tmp, mode.replace('w', 'x'), **kwargs) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    if fsync_dir:
        _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """``fsync`` a folder (its entries), where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, data: Union[str, bytes],
                 fsync: bool = True, fsync_dir: bool = False) -> None:
    """Write ``data`` (text as UTF-8 with ``\\n`` line ends, or bytes) to
    ``path`` atomically (see :func:`atomic_open`).

    Args:
        path: Destination file.
        data: The whole content.
        fsync: Force the data to disk before the rename. Defaults to True.
        fsync_dir: Force the folder entry to disk after the rename.
            Defaults to False.
    """
    if isinstance(data, bytes):
        with atomic_open(path, 'wb', fsync=fsync, fsync_dir=fsync_dir) as f:
            f.write(data)
    else:
        with atomic_open(path, 'w', fsync=fsync, fsync_dir=fsync_dir,
                         newline='\n') as f:
            f.write(data)


__all__ = ['atomic_open', 'atomic_write']
