"""A log of what a test's writes ask of the disk, each passed on to the real call."""

from __future__ import annotations

import os

import pytest

from curation.core import durable


class DiskLog:
    """What reaches the disk, in order: fsync (of which path), rename (from, to), and the
    writebacks started (of which path, and its size then). Each is passed on to the real call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, ...]] = []
        real_fsync, real_replace = os.fsync, os.replace
        real_sync_file_range = durable._sync_file_range()

        def sync_file_range(fd: int, offset: int, count: int, flags: int) -> int:
            path = os.readlink(f"/proc/self/fd/{fd}")
            self.events.append(("writeback", path, str(os.path.getsize(path))))
            return real_sync_file_range(fd, offset, count, flags)

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real_fsync(fd)

        def replace(source, target, *args, **kwargs) -> None:
            self.events.append(("rename", str(source), str(target)))
            real_replace(source, target, *args, **kwargs)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        if real_sync_file_range is not None:
            monkeypatch.setattr(durable, "_sync_file_range", lambda: sync_file_range)

    def synced(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == "fsync"]

    def waits(self) -> list[tuple[str, ...]]:
        """The syncs and renames: what a commit waits for, without the writebacks it does not."""
        return [event for event in self.events if event[0] != "writeback"]
