"""Where outputs go: any fsspec location, every file written atomically.

A work unit is done when its output exists, so an output must never be visible
half-written: write to a private temporary name, then move into place (a rename on a
local disk; on object stores the single PUT of the upload is already all-or-nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from curation.core.errors import UserError


class OutputError(UserError):
    """An output that cannot be written where the user pointed it; the message names the path."""


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a local path or an fsspec URL."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


@contextlib.contextmanager
def atomic_local_file(url: str, suffix: str = "") -> Iterator[str]:
    """Yield a local path to write; on success it is moved to `url` in one step."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        directory = os.path.dirname(path) or "."
        _make_folder(directory)
        # Same directory as the target so os.replace is a rename, never a copy.
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp{suffix}")
    else:
        tmp = os.path.join(tempfile.gettempdir(), f"soundry-{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        if isinstance(fs, LocalFileSystem):
            os.replace(tmp, path)
        else:
            fs.put_file(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _make_folder(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # A file stands on the way (an output option pointed at a file): name it, not the errno.
        blocking = directory
        while blocking and not os.path.exists(blocking):
            blocking = os.path.dirname(blocking)
        raise OutputError(
            f"{blocking} is a file, but the output needs a folder there; "
            "name another output folder or move the file away"
        ) from None


def write_bytes_atomic(url: str, data: bytes) -> None:
    with atomic_local_file(url) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_json_atomic(url: str, obj: Any) -> None:
    write_bytes_atomic(url, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(url: str) -> Any:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return json.load(f)


def write_table_atomic(url: str, table: pa.Table) -> None:
    with atomic_local_file(url, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(url: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = filesystem(url)
    return pq.read_table(path, columns=columns, filesystem=fs)


def list_files(url: str, suffix: str) -> list[str]:
    """Full URLs of the files directly inside `url` that end with `suffix`, sorted."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    names = sorted(
        p for p in fs.ls(path, detail=False) if p.endswith(suffix) and not os.path.basename(p).startswith(".")
    )
    return [fs.unstrip_protocol(p) if not isinstance(fs, LocalFileSystem) else p for p in names]


def remove_stale_temporaries(url: str) -> int:
    """Delete temporaries a killed run left behind in a local output folder."""
    fs, path = filesystem(url)
    if not isinstance(fs, LocalFileSystem) or not os.path.isdir(path):
        return 0
    removed = 0
    for directory, _, files in os.walk(path):
        for name in files:
            if name.startswith(".") and ".tmp" in name:
                os.remove(os.path.join(directory, name))
                removed += 1
    return removed
