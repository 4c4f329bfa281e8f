"""Where outputs go: any fsspec location, every file written atomically and durably.

A work unit is done when its output exists, so an output must never be visible
half-written, nor exist after a power loss without its bytes:
- local disk: write a private temporary beside the target, fsync it, rename it into place,
  fsync the folder (curation/core/durable.py);
- object stores whose upload is all-or-nothing (S3, GCS, Azure: a PUT either lands whole or
  not at all): one upload to the final name;
- any other fsspec filesystem (sftp, HDFS, SMB, `dir::`...), where an interrupted upload can
  leave a partial file: upload to a hidden temporary name beside the target, then move it.
Commits that must happen once (a version's manifest) are put-if-absent: `write_bytes_exclusive`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from curation.core.durable import sync_file, sync_folder
from curation.core.errors import UserError

# Object stores whose single upload is all-or-nothing: a reader sees the whole object or none.
ATOMIC_UPLOAD_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "memory"})
# Object stores served over the network, with buckets and no real folders.
OBJECT_STORE_PROTOCOLS = ATOMIC_UPLOAD_PROTOCOLS - {"memory"}


class OutputError(UserError):
    """An output that cannot be written where the user pointed it; the message names the path."""


class SchemeUnavailable(UserError):
    """A URL whose scheme fsspec does not know, or whose filesystem package is not installed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.reason = reason


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a local path or an fsspec URL."""
    options = dict(storage_options or {})
    if "::" not in url and _scheme(url) in OBJECT_STORE_PROTOCOLS:
        # Their filesystems (s3fs, gcsfs, adlfs) keep every folder listing for the life of the
        # process and answer exists() and info() from it: an object that a worker process wrote
        # after this process listed its folder would stay invisible (a resumed job's driver lists
        # its parts, then its workers write the rest). soundry reads listings fresh.
        options.setdefault("use_listings_cache", False)
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as error:
        raise SchemeUnavailable(url, _missing_package(url, error)) from None
    except ValueError as error:
        if "Protocol not known" not in str(error):
            raise
        raise SchemeUnavailable(
            url,
            f"unknown scheme {_scheme(url)}:// (fsspec has no filesystem by that name); "
            "use a local path or a scheme such as s3://, gs://, az://",
        ) from None
    return fs, path


def _scheme(url: str) -> str:
    return url.split("::")[-1].split("://", 1)[0] if "://" in url else url.split("::")[0]


def _missing_package(url: str, error: ImportError) -> str:
    from fsspec.registry import known_implementations

    scheme = _scheme(url)
    module = known_implementations.get(scheme, {}).get("class", "").split(".")[0]
    if module and module != "fsspec":
        return f"the {scheme}:// scheme needs the {module} package, which is not installed: pip install {module}"
    return f"the {scheme}:// scheme needs a package that is not installed ({error})"


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def atomic_upload(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether one upload to this filesystem lands whole or not at all."""
    return any(p in ATOMIC_UPLOAD_PROTOCOLS for p in _protocols(fs))


def is_object_store(fs: fsspec.AbstractFileSystem) -> bool:
    return any(p in OBJECT_STORE_PROTOCOLS for p in _protocols(fs))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def temporary_name(path: str, suffix: str = "") -> str:
    """A private name beside `path` (a local path or a path in an fsspec filesystem), hidden and
    marked .tmp, so that readers and listings skip it and a lease holder can clear it up."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}.{uuid.uuid4().hex}.tmp{suffix}")


@contextlib.contextmanager
def atomic_local_file(url: str, suffix: str = "") -> Iterator[str]:
    """Yield a local path to write; on success it is committed to `url` in one step."""
    fs, path = filesystem(url)
    if is_local(fs):
        directory = os.path.dirname(path) or "."
        _make_folder(directory)
        # Same directory as the target so os.replace is a rename, never a copy.
        tmp = temporary_name(path, suffix)
    else:
        tmp = os.path.join(tempfile.gettempdir(), f"soundry-{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        if is_local(fs):
            sync_file(tmp)  # the bytes before the name: a renamed file is never empty after a power loss
            os.replace(tmp, path)
            sync_folder(directory)
        else:
            _upload(fs, tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_local_files(urls: Sequence[str], suffixes: Sequence[str]) -> Iterator[list[str]]:
    """Yield a local path to write for each of `urls`; on success all are committed, the last
    one (a commit marker, such as a unit's clip part) only once the others are durable.

    The same guarantee as committing them one by one with `atomic_local_file`, in fewer disk
    round trips: the temporaries are synced together, then the folders of all but the last
    together, and the last's folder after its rename. A sync waits for the disk's journal;
    syncs issued at once share a journal commit, so a unit of short files pays three waits
    instead of six.
    """
    targets = [filesystem(url) for url in urls]
    local = [is_local(fs) for fs, _ in targets]
    tmps = []
    for (_, path), on_disk, suffix in zip(targets, local, suffixes, strict=True):
        if on_disk:
            _make_folder(os.path.dirname(path) or ".")
            tmps.append(temporary_name(path, suffix))
        else:
            tmps.append(os.path.join(tempfile.gettempdir(), f"soundry-{uuid.uuid4().hex}{suffix}"))
    try:
        yield tmps
        with ThreadPoolExecutor(len(tmps)) as pool:
            list(pool.map(sync_file, [tmp for tmp, on_disk in zip(tmps, local, strict=True) if on_disk]))
            folders = set()
            for (fs, path), on_disk, tmp in list(zip(targets, local, tmps, strict=True))[:-1]:
                if on_disk:
                    os.replace(tmp, path)
                    folders.add(os.path.dirname(path) or ".")
                else:
                    _upload(fs, tmp, path)
            list(pool.map(sync_folder, sorted(folders)))
        (fs, path), tmp = targets[-1], tmps[-1]
        if local[-1]:
            os.replace(tmp, path)
            sync_folder(os.path.dirname(path) or ".")
        else:
            _upload(fs, tmp, path)
    finally:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)


def _upload(fs: fsspec.AbstractFileSystem, local: str, path: str) -> None:
    if atomic_upload(fs):
        fs.put_file(local, path)
        return
    remote_tmp = temporary_name(path)
    try:
        fs.put_file(local, remote_tmp)
        try:
            fs.mv(remote_tmp, path)
        except OSError:
            if not fs.exists(path):
                raise
            fs.rm(path)  # a move does not replace a file on every filesystem (sftp)
            fs.mv(remote_tmp, path)
    finally:
        with contextlib.suppress(OSError):
            if fs.exists(remote_tmp):
                fs.rm(remote_tmp)


def write_bytes_exclusive(url: str, data: bytes) -> None:
    """Create `url` holding `data` only if nothing is there: FileExistsError otherwise (put-if-absent).

    Local disk: the synced temporary is hard-linked to the final name, which fails if the name
    exists, so of two writers exactly one wins and the file appears whole. Object stores: a
    conditional create (`open(..., "xb")`: S3's If-None-Match, GCS's generation 0, Azure's
    overwrite=False, in s3fs, gcsfs and adlfs). A filesystem without one checks and then
    writes, which two writers at the same instant could both pass; leases (lease.py) keep
    two writers out of one folder in the first place.
    """
    fs, path = filesystem(url)
    if is_local(fs):
        directory = os.path.dirname(path) or "."
        _make_folder(directory)
        tmp = temporary_name(path)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                _create_exclusive(path, data)  # a mount without hard links (some FUSE and SMB ones)
            sync_folder(directory)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        return
    parent = fs._parent(path)
    # An object store has no folders to make, and s3fs's makedirs creates a missing bucket: a
    # mistyped bucket name would become a new bucket in the user's account.
    if parent and not is_object_store(fs):
        fs.makedirs(parent, exist_ok=True)
    try:
        with fs.open(path, "xb") as f:
            f.write(data)
    except FileNotFoundError:
        if not is_object_store(fs):
            raise
        bucket = path.split("/", 1)[0]
        raise OutputError(
            f"{url}: the bucket {bucket} does not exist, or these credentials cannot see it; "
            "create it or correct the URL"
        ) from None
    except (NotImplementedError, ValueError, TypeError):  # a filesystem (or an older version) without mode "x"
        if fs.exists(path):
            raise FileExistsError(path) from None
        with fs.open(path, "wb") as f:
            f.write(data)


def _create_exclusive(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def write_json_atomic(url: str, obj: Any) -> None:
    write_bytes_atomic(url, json_bytes(obj))


def read_json(url: str) -> Any:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return json.load(f)


def write_table_atomic(url: str, table: pa.Table) -> None:
    with atomic_local_file(url, suffix=".parquet") as tmp:
        write_table_file(table, tmp)


def write_table_file(table: pa.Table, path: str) -> None:
    """A table as every soundry table is stored (zstd Parquet), to a local path."""
    pq.write_table(table, path, compression="zstd")


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
    return [fs.unstrip_protocol(p) if not is_local(fs) else p for p in names]


def is_temporary(name: str) -> bool:
    return name.startswith(".") and ".tmp" in name


def remove_stale_temporaries(url: str) -> int:
    """Delete the temporaries a killed run left in an output folder.

    Only the holder of the folder's lease may call this (OutputLease.remove_stale_temporaries):
    any other live writer's temporaries would go with them. Object stores with all-or-nothing
    uploads never hold a temporary.
    """
    fs, path = filesystem(url)
    if is_local(fs):
        if not os.path.isdir(path):
            return 0
        found = [os.path.join(d, name) for d, _, files in os.walk(path) for name in files if is_temporary(name)]
        for file in found:
            os.remove(file)
        return len(found)
    if atomic_upload(fs) or not fs.isdir(path):
        return 0
    found = [p for p in fs.find(path) if is_temporary(p.rstrip("/").rsplit("/", 1)[-1])]
    for file in found:
        fs.rm(file)
    return len(found)
