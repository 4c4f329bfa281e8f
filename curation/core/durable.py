"""fsync: a file's bytes, and a folder's entries, on the disk before anything counts on them.

A rename commits a file only for a running system: after a power loss the new name can
point at a file whose bytes never left the page cache (an empty or short file that
"exists", which resume takes as done). So a temporary is synced before it is renamed into
place, and its folder after, so that the rename itself survives. Filesystems that cannot
sync a folder (some network and FUSE mounts) are skipped: there is nothing more to ask of them.

A file written in pieces (a clip part, a row group at a time) can start its way to the disk
after each piece (`start_writeback`), so the sync that commits it waits for the last piece
only, not for every byte at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
from collections.abc import Callable

# A folder that cannot be opened or synced here says so with one of these; anything else is a real failure.
_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES, errno.EISDIR}


def sync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's bytes to the disk (through any handle: fsync syncs the inode)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (the names created, renamed or removed in it) to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def sync_tree(folder: str | os.PathLike[str]) -> None:
    """Every file and folder under `folder`, then `folder` itself: before a folder is renamed into place."""
    for directory, _, files in os.walk(folder, topdown=False):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                sync_file(os.path.join(directory, name))
        sync_folder(directory)


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writing the range's dirty pages, do not wait


def start_writeback(fd: int) -> None:
    """Start writing the dirty pages of `fd`'s file to the disk, and return without waiting
    (Linux `sync_file_range` with SYNC_FILE_RANGE_WRITE, what RocksDB's `bytes_per_sync` does;
    elsewhere nothing). It promises nothing: a commit still syncs the file, and that sync, now
    shorter, reports any error the writing met. A refusal (a filesystem or kernel without it)
    is ignored for the same reason."""
    sync_file_range = _sync_file_range()
    if sync_file_range is not None:
        sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c")).sync_file_range
    except (OSError, AttributeError, TypeError):  # no C library by that name, or not Linux's
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
