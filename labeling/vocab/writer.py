"""Writing vocabulary tables and their manifest.

A table is streamed to a private local file in row groups (memory: one group), its version
(vocabulary_table.vocabulary_version, a hash of its content) computed, and only then put in
place as `<name>-<version>.parquet`: the manifest of the previous build still names files
that exist until the new manifest, written last, replaces it. Files no manifest names any
more are removed after that.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.core.storage import atomic_local_file, exists, filesystem, join, list_files, write_json_atomic
from labeling.vocab.table import MANIFEST, VOCAB_SCHEMA, Kind, caption_id, vocabulary_version

ROWS_PER_GROUP = 65536


class VocabularyWriter:
    def __init__(self, name: str, kind: Kind) -> None:
        self.name = name
        self.kind = kind
        self.count = 0
        self.sources: collections.Counter[str] = collections.Counter()
        self.aspects: collections.Counter[str] = collections.Counter()
        self._folder = tempfile.mkdtemp(prefix=f"soundry-vocab-{name}-")
        self._path = os.path.join(self._folder, f"{name}.parquet")
        self._writer = pq.ParquetWriter(self._path, VOCAB_SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []

    def add(self, text: str, source: str, provenance: dict[str, Any], aspect: str | None = None) -> None:
        self._rows.append(
            {
                "vocab": self.name,
                "caption_id": caption_id(text),
                "text": text,
                "kind": self.kind,
                "aspect": aspect,
                "source": source,
                "provenance": json.dumps(provenance, sort_keys=True),
            }
        )
        self.count += 1
        self.sources[source] += 1
        if aspect:
            self.aspects[aspect] += 1
        if len(self._rows) >= ROWS_PER_GROUP:
            self._flush()

    def publish(self, output: str) -> dict[str, Any] | None:
        """Put the table in `output`; its manifest entry, or None for an empty vocabulary
        (an empty vocabulary is left out of the manifest rather than listed with no captions)."""
        self._flush()
        self._writer.close()
        try:
            if self.count == 0:
                return None
            version = vocabulary_version(pq.read_table(self._path, columns=["caption_id", "kind", "aspect"]))
            file = f"{self.name}-{version}.parquet"
            if not exists(join(output, file)):  # the same version is the same content
                with atomic_local_file(join(output, file), suffix=".parquet") as tmp:
                    shutil.copyfile(self._path, tmp)
            entry: dict[str, Any] = {
                "file": file,
                "version": version,
                "kind": self.kind,
                "count": self.count,
                "sources": dict(sorted(self.sources.items())),
            }
            if self.aspects:
                entry["aspects"] = dict(sorted(self.aspects.items()))
            return entry
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    def discard(self) -> None:
        """Drop what was written (a failed run); nothing to do once published."""
        if self._writer.is_open:
            self._writer.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=VOCAB_SCHEMA))
            self._rows = []


def write_manifest(
    output: str, vocabularies: dict[str, dict[str, Any]], details: dict[str, Any], names: list[str]
) -> list[str]:
    """Write manifest.json (last: it is the commit), then remove the files of `names` it no
    longer lists; returns the removed files' names."""
    write_json_atomic(join(output, MANIFEST), {"vocabularies": vocabularies, **details})
    listed = {entry["file"] for entry in vocabularies.values()}
    pattern = re.compile(r"^(" + "|".join(map(re.escape, names)) + r")-[0-9a-f]{16}\.parquet$")
    removed = []
    for url in list_files(output, ".parquet"):
        base = url.rstrip("/").rsplit("/", 1)[-1]
        if pattern.match(base) and base not in listed:
            fs, path = filesystem(url)
            fs.rm(path)
            removed.append(base)
    return removed
