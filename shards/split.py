"""Which split a source's clips land in, and which sources stay out.

Splits are drawn per source, never per clip: the 30 s clips of one song are near neighbours,
and one in train with another in valid would leak. The draw is a hash of the source's id, so
it needs no state and a source keeps its split when the corpus grows and is published again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping

from curation.core.errors import UserError
from curation.core.storage import filesystem
from shards.config import SPLIT_NAME, Splits


class SplitFileError(UserError):
    """An assignment or exclusion file that cannot be read or holds a bad row; the message names it."""


def source_names(source_id: str, source_uri: str) -> tuple[str, ...]:
    """The names a user may give a source by in a list: its id, its URI, its file name."""
    return source_id, source_uri, os.path.basename(source_uri.rstrip("/"))


def hashed_split(source_id: str, fractions: Mapping[str, float], salt: str) -> str:
    """The split at the source's point in [0, 1) on the cumulative fractions (in name order)."""
    digest = hashlib.sha256(f"{salt}:{source_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    names = sorted(fractions)
    for name in names:
        cumulative += fractions[name]
        if point < cumulative:
            return name
    return next(n for n in reversed(names) if fractions[n] > 0)


class SplitAssigner:
    def __init__(self, config: Splits) -> None:
        self.config = config
        self.fixed = read_assignments(config.assignments) if config.assignments else {}

    def split(self, source_id: str, source_uri: str, split_hint: str | None) -> str:
        for name in source_names(source_id, source_uri):
            if name in self.fixed:
                return self.fixed[name]
        if self.config.use_split_hints and split_hint:
            return split_hint
        return hashed_split(source_id, self.config.fractions, self.config.salt)


def read_lines(url: str) -> list[str]:
    """The non-empty lines of a list file, without # comments."""
    text = _read_text(url)
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def read_assignments(url: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(_read_text(url))))
    if rows and not {"source", "split"} <= set(rows[0]):
        raise SplitFileError(
            f"split assignments {url}: needs a header with columns source,split (found {', '.join(rows[0])})"
        )
    fixed = {}
    for line, row in enumerate(rows, start=2):
        source, split = (row.get("source") or "").strip(), (row.get("split") or "").strip()
        if not source or not SPLIT_NAME.fullmatch(split):
            raise SplitFileError(
                f"split assignments {url}, line {line}: needs a source and a split name "
                f"of lower case letters, digits and _ (found {source!r}, {split!r})"
            )
        fixed[source] = split
    return fixed


def _read_text(url: str) -> str:
    fs, path = filesystem(url)
    try:
        with fs.open(path, "rb") as f:
            return f.read().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SplitFileError(f"{url}: cannot be read ({error})") from None
