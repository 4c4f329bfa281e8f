"""The clip table and the rejects table: typed rows, their Arrow schemas, and where a curate output keeps them.

These are the contract between curation and every later stage (README, "Clip table (one row
per clip)" and "Rejects table"). A row is built once, never mutated; Arrow is the only on-disk form.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
    return pa.Table.from_pylist(rows, schema=CLIP_SCHEMA)


def clip_part_writer(path: str, schema: pa.Schema = CLIP_SCHEMA) -> pq.ParquetWriter:
    """How a clip part is stored, by the unit that writes it and by anything that rewrites it.

    FLAC bytes do not compress further; everything else is small and compresses well (zstd).
    No dictionary encoding: building one per column and row group cost 2 ms a row group (a
    quarter millisecond per short clip), and zstd already folds the repeated strings.
    """
    compression = {name: ("none" if name == "audio_flac" else "zstd") for name in schema.names}
    return pq.ParquetWriter(path, schema, compression=compression, use_dictionary=False)


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
