"""Reading a shard: a tar (path, fsspec URL or `pipe:` command) to its samples, in member order."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO, Any

from curation.core.storage import filesystem

# A sample as read: "__key__", "__url__", and the bytes of each member by extension ("flac", "json", ...).
Sample = dict[str, Any]

# What a broken shard raises while read: missing, unreadable, truncated or garbled tar.
_BAD_SHARD = (OSError, EOFError, tarfile.TarError)


class BrokenShard(Exception):
    """A tar that cannot be read to its end; `partial` is the key of the sample it broke in."""

    def __init__(self, url: str, error: Exception, partial: str | None) -> None:
        where = f" in sample {partial}" if partial else ""
        super().__init__(f"shard {url} is unreadable{where}: {type(error).__name__}: {error}")
        self.partial = partial


def read_tar_samples(url: str) -> Iterator[Sample]:
    """One tar's samples in order: the members of one key grouped into a dict of extension ->
    bytes, in member order. A broken tar raises BrokenShard after the whole samples before it."""
    current: Sample | None = None
    try:
        with open_url(url) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                key, _, extension = member.name.rsplit("/", 1)[-1].partition(".")
                # A new key completes the sample before: hand it on before reading on, so a
                # shard truncated here loses nothing that was whole.
                if current is not None and current["__key__"] != key:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__url__": url}
                current[extension.lower()] = archive.extractfile(member).read()
    except _BAD_SHARD as error:
        raise BrokenShard(url, error, current["__key__"] if current else None) from error
    if current is not None:
        yield current


def open_url(url: str) -> IO[bytes]:
    if url.startswith("pipe:"):
        import webdataset  # only `pipe:` URLs need it

        return webdataset.gopen(url, "rb")
    fs, path = filesystem(url)
    return fs.open(path, "rb")
