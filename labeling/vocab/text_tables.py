"""Rows of the tables users bring (caption datasets, song lists, evaluation captions).

CSV, TSV, JSON Lines, JSON (a list of objects) and Parquet, local or any fsspec URL,
streamed. What the user must fix (a missing file or column, an unknown format) raises
TableFileError with a one-line message; a bad row (undecodable bytes, a line longer than
the limit, malformed CSV or JSON, no object) is skipped and counted by reason, and the
first few are remembered with their line numbers for the summary.
"""

from __future__ import annotations

import collections
import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from curation.core.errors import UserError
from curation.core.storage import filesystem

_CHUNK = 1 << 16
_EXTENSIONS = {
    "csv": "csv",
    "tsv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "json",
    "parquet": "parquet",
    "pq": "parquet",
}
_EXAMPLES_KEPT = 5


class TableFileError(UserError):
    """A user's table file that cannot be read as asked; the message names the file and what to change."""


class TableReader:
    """Iterate (line or row number, {column: value}) over a file's rows; `skipped` counts the bad ones."""

    def __init__(
        self,
        path: str,
        required: list[str],
        optional: list[str | None] = (),
        fmt: str = "auto",
        encoding: str = "utf-8",
        max_line_bytes: int = 2**17,
        option: str = "",
    ) -> None:
        self.path = path
        self.required = required
        self.optional = [c for c in optional if c]
        self.format = _format(path, fmt)
        self.encoding = encoding
        self.max_line_bytes = max_line_bytes
        self.option = option  # the config key that names the columns, for messages
        self.skipped: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []  # "line 7: not_utf-8" for the first few skips

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        fs, path = filesystem(self.path)
        if not fs.exists(path):
            raise TableFileError(f"{self.path}: no such file")
        if self.format == "parquet":
            yield from self._parquet(fs, path)
            return
        with fs.open(path, "rb") as f:
            if self.format == "csv":
                yield from self._csv(f)
            elif self.format == "jsonl":
                yield from self._jsonl(f)
            else:
                yield from self._json(f)

    def summary(self) -> dict[str, Any]:
        return {"skipped": dict(sorted(self.skipped.items())), "examples": self.examples}

    def skip(self, reason: str, where: int) -> None:
        """Count a skipped row (the readers' own, and rows a caller cannot use)."""
        self.skipped[reason] += 1
        if len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(f"line {where}: {reason}")

    def _check_columns(self, present: list[str]) -> None:
        missing = [c for c in [*self.required, *self.optional] if c not in present]
        if missing:
            hint = f"; set {self.option}" if self.option else ""
            raise TableFileError(
                f"{self.path}: no column {missing[0]!r} (it has: {', '.join(map(str, present)) or 'nothing'}){hint}"
            )

    def _pick(self, record: dict[str, Any]) -> dict[str, Any]:
        return {c: _value(record.get(c)) for c in [*self.required, *self.optional]}

    def _lines(self, f: BinaryIO) -> Iterator[tuple[int, str]]:
        """Decoded physical lines with their numbers; too long or undecodable ones skipped.
        Read in chunks, so a line of gigabytes costs one chunk of memory, not the line."""
        number, parts, size, too_long = 0, [], 0, False
        encoding = "utf-8-sig" if self.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else self.encoding
        while True:
            chunk = f.read(_CHUNK)
            pieces = chunk.split(b"\n") if chunk else [b""]
            for i, piece in enumerate(pieces):
                ends_line = i < len(pieces) - 1 or (not chunk and (size > 0 or too_long))
                if not too_long:
                    parts.append(piece)
                    size += len(piece)
                    too_long = size > self.max_line_bytes
                if not ends_line:
                    continue
                number += 1
                raw = b"".join(parts)
                if too_long:
                    self.skip("line_too_long", number)
                else:
                    try:
                        yield number, raw.decode(encoding if number == 1 else self.encoding) + "\n"
                    except UnicodeDecodeError:
                        self.skip(f"not_{self.encoding.lower()}", number)
                parts, size, too_long = [], 0, False
            if not chunk:
                return

    def _csv(self, f: BinaryIO) -> Iterator[tuple[int, dict[str, Any]]]:
        position = [0]

        def lines() -> Iterator[str]:
            for number, line in self._lines(f):
                position[0] = number
                yield line

        delimiter = "\t" if self.path.lower().endswith(".tsv") else ","
        reader = csv.reader(lines(), delimiter=delimiter)
        header: list[str] | None = None
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                self.skip("malformed_csv", position[0])
                if header is None:
                    raise TableFileError(f"{self.path}: the header line is not valid CSV ({error})") from None
                continue
            if header is None:
                header = [name.strip() for name in record]
                self._check_columns(header)
                continue
            if not any(field.strip() for field in record):
                self.skip("empty_row", position[0])
                continue
            if len(record) != len(header):
                self.skip("wrong_field_count", position[0])
                continue
            yield position[0], self._pick(dict(zip(header, record, strict=True)))
        if header is None:
            raise TableFileError(f"{self.path}: empty file, expected a header line naming the columns")

    def _jsonl(self, f: BinaryIO) -> Iterator[tuple[int, dict[str, Any]]]:
        yield from self._objects(self._parsed_lines(f))

    def _parsed_lines(self, f: BinaryIO) -> Iterator[tuple[int, Any]]:
        for number, line in self._lines(f):
            if not line.strip():
                self.skip("empty_row", number)
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                self.skip("malformed_json", number)

    def _json(self, f: BinaryIO) -> Iterator[tuple[int, dict[str, Any]]]:
        # A JSON document is read whole; JSON Lines stream, so large datasets should be .jsonl.
        try:
            records = json.loads(f.read().decode(self.encoding))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TableFileError(
                f"{self.path}: not valid JSON in {self.encoding} ({error}); for one object per line use format jsonl"
            ) from None
        if not isinstance(records, list):
            raise TableFileError(f"{self.path}: expected a JSON list of objects, found {type(records).__name__}")
        yield from self._objects(enumerate(records, start=1))

    def _objects(self, numbered: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Numbered JSON values as rows: objects only, columns checked on the first."""
        checked = False
        for number, record in numbered:
            if not isinstance(record, dict):
                self.skip("not_an_object", number)
                continue
            if not checked:
                self._check_columns(list(record))
                checked = True
            yield number, self._pick(record)

    def _parquet(self, fs, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
        with fs.open(path, "rb") as f:
            try:
                parquet = pq.ParquetFile(f)
            except Exception as error:  # pyarrow raises several types for a file that is not Parquet
                raise TableFileError(f"{self.path}: not a Parquet file ({error})") from None
            self._check_columns(parquet.schema_arrow.names)
            number = 0
            for batch in parquet.iter_batches(columns=[*self.required, *self.optional], batch_size=4096):
                for record in batch.to_pylist():
                    number += 1
                    yield number, self._pick(record)


def _format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if extension not in _EXTENSIONS:
        raise TableFileError(
            f"{path}: cannot tell the format from the extension; set format to csv, jsonl, json or parquet"
        )
    return _EXTENSIONS[extension]


def _value(value: Any) -> Any:
    """Text as stripped strings (empty is None); lists stay lists (tag columns)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    text = str(value).strip()
    return text or None
