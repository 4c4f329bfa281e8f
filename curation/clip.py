"""The clip table and the rejects table: typed rows and their Arrow schemas.

These are the contract between curation and every later stage (README, "Clip table (one row
per clip)" and "Rejects table"). A row is built once, never mutated; Arrow is the only on-disk form.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pyarrow as pa

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
