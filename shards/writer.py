"""Write one shard: its tar and its Parquet sidecar, each atomically, the tar last.

This is the function the runners map over a version's shard tasks. A shard whose tar exists
is done (its sidecar, written just before, carries the tar's size and checksum), so a killed
publish resumes without writing any shard twice. Tar headers carry no time or owner, so the
same inputs give byte-identical shards on every run and every engine.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import tarfile
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from curation.core.storage import atomic_local_file, exists, filesystem, join, list_files, write_table_atomic
from labeling.labels.table import (
    CLIP_EMBEDDINGS_DIR,
    EMBEDDING_SCHEMA,
    LABEL_SCHEMA,
    LABELS_DIR,
    LabelRow,
    labels_from_table,
)
from shards.config import ShardConfig
from shards.plan import ShardTask
from shards.sample import SIDECAR_SCHEMA, CaptionFilter, members, sample_json, sidecar_row
from shards.split import read_lines

SHARDS_DIR = "shards"


@dataclasses.dataclass
class ShardResult:
    name: str
    split: str
    count: int
    bytes: int
    sha256: str
    wall_s: float = 0.0
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardResult:
        return cls(**data)


def version_url(config: ShardConfig) -> str:
    return join(config.root, config.version)


def tar_url(version: str, name: str) -> str:
    return join(version, SHARDS_DIR, f"{name}.tar")


def sidecar_url(version: str, name: str) -> str:
    return join(version, SHARDS_DIR, f"{name}.parquet")


def written_shard(task: ShardTask, config: ShardConfig) -> ShardResult | None:
    return find_written_shard(version_url(config), task.name)


def find_written_shard(version: str, name: str) -> ShardResult | None:
    """The facts of the version's shard `name` if it is already written (its tar is the commit).

    Trusted only when the tar has the size its sidecar recorded: a tar cut short (a copy that was
    interrupted, a filesystem that lost its tail) is not done, and is written again."""
    tar, sidecar = tar_url(version, name), sidecar_url(version, name)
    if not (exists(tar) and exists(sidecar)):
        return None
    try:
        facts = read_shard_facts(sidecar)
    except (OSError, ValueError, KeyError):  # a sidecar cut short is no commit either (ArrowInvalid is a ValueError)
        return None
    fs, path = filesystem(tar)
    if fs.size(path) != facts.bytes:
        return None
    return dataclasses.replace(facts, resumed=True)


def write_shard(task: ShardTask, config: ShardConfig) -> ShardResult:
    started = time.perf_counter()
    done = written_shard(task, config)
    if done is not None:
        return done
    version = version_url(config)
    tar, sidecar = tar_url(version, task.name), sidecar_url(version, task.name)
    labels, embeddings = _labels_for(task, config)
    clips = _read_clips(task)
    captions = _caption_filter(tuple(config.exclude.captions), tuple(config.exclude.vocabularies))
    rows = []
    with atomic_local_file(tar, suffix=".tar") as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
            for index, ref in enumerate(task.clips):
                clip = clips.pop(ref.clip_id)  # freed as written
                label = labels.get(ref.clip_id)
                record = sample_json(clip, task.split, captions.apply(label) if label else None)
                clap = embeddings.get(ref.clip_id)
                for name, data in members(ref.clip_id, clip["audio_flac"], record, clap):
                    add_member(archive, name, data)
                rows.append(sidecar_row(record, task.name, index, len(clip["audio_flac"]), clap is not None))
        result = write_sidecar(sidecar, pa.Table.from_pylist(rows, schema=SIDECAR_SCHEMA), tmp, task.name, task.split)
        # leaving the block moves the tar into place: the shard's commit
    result.wall_s = time.perf_counter() - started
    return result


def write_sidecar(url: str, table: pa.Table, tar: str, name: str, split: str) -> ShardResult:
    """The sidecar of the (not yet committed) local tar file `tar`, carrying its size and checksum."""
    with open(tar, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = f.seek(0, 2)
    facts = {"tar_sha256": digest, "tar_bytes": str(size), "count": str(table.num_rows), "split": split}
    write_table_atomic(url, table.replace_schema_metadata({f"soundry.{k}": v for k, v in facts.items()}))
    return ShardResult(name, split, table.num_rows, size, digest)


def read_shard_facts(sidecar: str) -> ShardResult:
    """Name, split, count, size and checksum of a written shard, from its sidecar."""
    fs, path = filesystem(sidecar)
    with fs.open(path, "rb") as f:
        metadata = pq.read_schema(f).metadata or {}
    facts = {k.decode().removeprefix("soundry."): v.decode() for k, v in metadata.items() if k.startswith(b"soundry.")}
    name = sidecar.rsplit("/", 1)[-1].removesuffix(".parquet")
    return ShardResult(name, facts["split"], int(facts["count"]), int(facts["tar_bytes"]), facts["tar_sha256"])


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    info.mtime = 0
    archive.addfile(info, _Reader(data))


class _Reader:
    """A bytes object as the file tarfile copies from, without a BytesIO copy of the audio."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        chunk = self._view[self._at : end]
        self._at += len(chunk)
        return chunk


def _read_clips(task: ShardTask) -> dict[str, dict[str, Any]]:
    """The task's clips, each row group read once: one shard's audio in memory at most."""
    wanted: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    for ref in task.clips:
        wanted[(ref.part, ref.row_group)].append(ref.row)
    clips = {}
    by_part: dict[str, list[int]] = collections.defaultdict(list)
    for part, group in wanted:
        by_part[part].append(group)
    for part, groups in by_part.items():
        fs, path = filesystem(part)
        with fs.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            for group in sorted(groups):
                table = parquet.read_row_group(group).take(sorted(wanted[(part, group)]))
                for row in table.to_pylist():
                    clips[row["clip_id"]] = row
    return clips


def _labels_for(task: ShardTask, config: ShardConfig) -> tuple[dict[str, LabelRow], dict[str, np.ndarray]]:
    if not config.labels:
        return {}, {}
    ids = pa.array([ref.clip_id for ref in task.clips], pa.string())
    rows = _matching(list_files(join(config.labels, LABELS_DIR), ".parquet"), LABEL_SCHEMA, "clip_id", ids)
    labels = {row.clip_id: row for row in labels_from_table(rows)}
    vectors = _matching(list_files(join(config.labels, CLIP_EMBEDDINGS_DIR), ".parquet"), EMBEDDING_SCHEMA, "key", ids)
    embeddings = {
        key: np.asarray(vector, dtype=np.float32)
        for key, vector in zip(vectors["key"].to_pylist(), vectors["embedding"].to_pylist(), strict=True)
    }
    return labels, embeddings


def _matching(parts: list[str], schema: pa.Schema, column: str, ids: pa.Array) -> pa.Table:
    """The rows of the parts whose `column` is one of ids (the key column is read, then only matches)."""
    if not parts:
        return schema.empty_table()
    fs, _ = filesystem(parts[0])
    dataset = pads.dataset([filesystem(p)[1] for p in parts], schema=schema, filesystem=fs, format="parquet")
    return dataset.to_table(filter=pc.field(column).isin(ids))


@functools.lru_cache(maxsize=4)
def _caption_filter(caption_files: tuple[str, ...], vocabularies: tuple[str, ...]) -> CaptionFilter:
    return CaptionFilter([line for url in caption_files for line in read_lines(url)], vocabularies)
