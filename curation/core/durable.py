"""fsync: a file's bytes, and a folder's entries, on the disk before anything counts on them.

A rename commits a file only for a running system: after a power loss the new name can
point at a file whose bytes never left the page cache (an empty or short file that
"exists", which resume takes as done). So a temporary is synced before it is renamed into
place, and its folder after, so that the rename itself survives. Filesystems that cannot
sync a folder (some network and FUSE mounts) are skipped: there is nothing more to ask of them.
"""

from __future__ import annotations

import contextlib
import errno
import os

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
