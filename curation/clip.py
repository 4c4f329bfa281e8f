"""The clip table and the rejects table: typed rows, their Arrow schemas, and where a curate output keeps them.

These are the contract between curation and every later stage (README, "Clip table (one row
per clip)" and "Rejects table"). A row is built once, never mutated; Arrow is the only on-disk form.
"""

from __future__ import annotations

import array
import dataclasses
import itertools
import math
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.core.durable import start_writeback
from curation.core.errors import UserError
from curation.core.storage import exists, join, list_files

# Container tags promoted to their own columns; every tag is kept in `tags_json` too.
TAG_COLUMNS = ("title", "artist", "album", "genre", "date", "comment")

CLIP_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("start_sample", pa.int64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("num_samples", pa.int64(), nullable=False),
        pa.field("sample_rate", pa.int32(), nullable=False),
        pa.field("channels", pa.int16(), nullable=False),
        pa.field("seconds_start", pa.int32(), nullable=False),
        pa.field("seconds_total", pa.int32(), nullable=False),
        # where it came from: the location's attributes, overridable by a sidecar
        pa.field("source_name", pa.string()),
        pa.field("license", pa.string()),
        pa.field("split_hint", pa.string()),
        pa.field("metadata_json", pa.string()),
        # source facts from the probe
        pa.field("source_format", pa.string()),
        pa.field("source_codec", pa.string()),
        pa.field("source_sample_rate", pa.int32()),
        pa.field("source_channels", pa.int16()),
        pa.field("source_duration_s", pa.float64()),
        pa.field("source_bit_rate", pa.int64()),
        pa.field("decoder", pa.string()),
        # container tags
        *[pa.field(name, pa.string()) for name in TAG_COLUMNS],
        pa.field("tags_json", pa.string()),
        # quality measures
        pa.field("peak_dbfs", pa.float32()),
        pa.field("rms_dbfs", pa.float32()),
        pa.field("lufs", pa.float32()),
        pa.field("clipping_ratio", pa.float32()),
        pa.field("silence_ratio", pa.float32()),
        pa.field("bandwidth_hz", pa.float32()),
        pa.field("mono_as_stereo", pa.bool_()),
        pa.field("pcm_sha256", pa.string(), nullable=False),
        pa.field("audio_flac", pa.binary(), nullable=False),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("clip_id", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("step", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string()),
    ]
)

# Steps at which a file or clip can be rejected, in pipeline order.
STEPS = ("discover", "probe", "decode", "segment", "measure", "filter", "dedup")


def make_clip_id(source_id: str, start_sample: int) -> str:
    """Stable across runners and reruns: the source's content hash and the clip's first
    sample. No dots or slashes, so it is a safe WebDataset key."""
    return f"{source_id[:20]}-{start_sample:012d}"


def seconds_start(start_s: float) -> int:
    """Stable Audio's timing condition: the crop's offset in the source, floored."""
    return int(math.floor(start_s + 1e-9))


def seconds_total(source_duration_s: float) -> int:
    """Stable Audio's timing condition: the source's duration, rounded up."""
    return int(math.ceil(source_duration_s - 1e-9))


@dataclasses.dataclass(frozen=True)
class Reject:
    source_uri: str
    step: str
    reason: str
    detail: str
    source_id: str | None = None
    clip_id: str | None = None
    start_s: float | None = None
    duration_s: float | None = None
    duplicate_of: str | None = None

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ValueError(f"unknown step {self.step!r}; one of {STEPS}")

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def rejects_to_table(rejects: list[Reject]) -> pa.Table:
    return pa.Table.from_pylist([r.to_row() for r in rejects], schema=REJECT_SCHEMA)


def rows_to_clip_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as a table of CLIP_SCHEMA. The FLAC column is laid out from one joined buffer:
    built value by value, as the other columns are, its buffer grows by doubling and is copied
    at each step (most of a row group's table cost for short clips, and fresh memory each time)."""
    columns = [
        _binary_column([row[name] for row in rows])
        if name == "audio_flac"
        else pa.array([row.get(name) for row in rows], field.type)
        for name, field in zip(CLIP_SCHEMA.names, CLIP_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=CLIP_SCHEMA)


_MAX_BINARY_BYTES = 2**31 - 1  # what a binary array's int32 offsets reach


def _binary_column(values: list[bytes]) -> pa.Array | pa.ChunkedArray:
    ends = list(itertools.accumulate(map(len, values), initial=0))
    if ends[-1] > _MAX_BINARY_BYTES:  # past int32 offsets: Arrow's own builder splits it into chunks
        return pa.array(values, pa.binary())
    offsets = pa.py_buffer(array.array("i", ends))
    return pa.Array.from_buffers(pa.binary(), len(values), [None, offsets, pa.py_buffer(b"".join(values))])


def clip_part_writer(path: str, schema: pa.Schema = CLIP_SCHEMA, *, write_back: bool = False) -> pq.ParquetWriter:
    """How a clip part is stored, by the unit that writes it and by anything that rewrites it.

    FLAC bytes do not compress further, and they are 99.5% of a part. The other columns are
    small and take Snappy, which needs no compression context: zstd built one for every column
    chunk (37 a row group), 0.6 ms a row group of 8 short clips to write and three times the
    time to read a part's keys back, to store them 6% smaller (141 against 150 KB in a part of
    296 short clips, 66 MB).
    No dictionary encoding: building one per column and row group cost 2 ms a row group (a
    quarter millisecond per short clip), and the strings it would fold are a few KB.
    `write_back`: the part is on local disk and will be synced to commit it; each row group
    starts its way to the disk as soon as it is written, so that sync waits only for the last
    (a unit of 75 short files: 13-15 ms of waiting at its commit, 3 ms with it).
    """
    compression = {name: ("none" if name == "audio_flac" else "snappy") for name in schema.names}
    writer = _WritingBackParquetWriter if write_back else pq.ParquetWriter
    return writer(path, schema, compression=compression, use_dictionary=False)


class _WritingBackParquetWriter(pq.ParquetWriter):
    """A ParquetWriter that starts each row group's writeback once it is written; the same bytes."""

    def __init__(self, path: str, schema: pa.Schema, **options: Any) -> None:
        super().__init__(path, schema, **options)
        self._fd = os.open(path, os.O_RDONLY)  # the writer's own handle is Arrow's

    def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
        super().write_table(table, row_group_size)
        start_writeback(self._fd)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._fd >= 0:  # close() may be called again; the fd is closed once
                os.close(self._fd)
                self._fd = -1


# A curate output holds the clip table as one part per work unit in clips/, and summary.json,
# which `soundry curate` writes last: its presence is the commit of the whole table.
CLIPS_DIR = "clips"
SUMMARY = "summary.json"


class ClipTableError(UserError):
    """A folder that holds no finished clip table, or a part that is not one; the message names it."""


def clips_folder(output: str) -> str:
    return join(output, CLIPS_DIR)


def clip_part_url(output: str, unit_id: str) -> str:
    return join(output, CLIPS_DIR, f"part-{unit_id}.parquet")


def summary_url(output: str) -> str:
    return join(output, SUMMARY)


def written_clip_parts(output: str) -> list[str]:
    """The clip parts in `output` so far, in name order, finished or not: the writer's view."""
    return [
        url
        for url in list_files(clips_folder(output), ".parquet")
        if url.rstrip("/").rsplit("/", 1)[-1].startswith("part-")
    ]


def curated_output(folder: str) -> str:
    """The curate output `folder` names: itself, or its parent when it is that output's clips/ folder."""
    parent, _, name = folder.rstrip("/").rpartition("/")
    if name == CLIPS_DIR and parent and not exists(clips_folder(folder)):
        return parent
    return folder


def clip_parts(folder: str) -> list[str]:
    """The parts of the finished clip table in `folder` (a curate output or its clips/ folder),
    in name order: the one check every reader of a clip table makes.

    Finished means summary.json is written (curation writes it after deduplication has
    rewritten the parts) and clips/ holds parts; anything else is refused with what to do.
    """
    output = curated_output(folder)
    parts = written_clip_parts(output)
    if not exists(summary_url(output)):
        if parts:
            raise ClipTableError(
                f"{output}: curation has not finished here (no {SUMMARY}); run `soundry curate` again to complete it"
            )
        raise ClipTableError(
            f"{output}: no clip table here (no {SUMMARY}, no {CLIPS_DIR}/part-*.parquet); "
            "give the output folder of `soundry curate`"
        )
    if not parts:
        raise ClipTableError(
            f"{output}: {SUMMARY} is there but no {CLIPS_DIR}/part-*.parquet; the clip table "
            "was moved or deleted: run `soundry curate` into a new folder"
        )
    return parts
