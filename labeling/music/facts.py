"""A clip's musical facts (tempo, key, chords) and the analysis table that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

ANALYSIS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("bpm", pa.float32()),  # null: unknown (silence, noise, arrhythmic, too short)
        pa.field("bpm_confidence", pa.float32(), nullable=False),  # 0..1; 0 when unknown
        pa.field("beats", pa.int32(), nullable=False),  # beats tracked in the clip
        pa.field("key", pa.string()),  # tonic, e.g. "A"; null: unknown
        pa.field("mode", pa.string()),  # major | minor; null: unknown
        pa.field("key_confidence", pa.float32(), nullable=False),
        pa.field("chords", pa.list_(pa.string())),  # chord changes, e.g. ["A:min", "F:maj", ...]
        pa.field("progression", pa.string()),  # the first changes as Roman numerals, e.g. "i-VI-III-VII"
    ]
)
ANALYSIS_DIR = "analysis"


@dataclass(frozen=True)
class MusicFacts:
    bpm: float | None = None
    bpm_confidence: float = 0.0
    beats: int = 0
    key: str | None = None
    mode: str | None = None
    key_confidence: float = 0.0
    chords: list[str] = field(default_factory=list)
    progression: str | None = None

    @property
    def key_name(self) -> str | None:
        """ "A minor", or None when the key is unknown."""
        return f"{self.key} {self.mode}" if self.key and self.mode else None

    def to_row(self, clip_id: str) -> dict[str, Any]:
        return {"clip_id": clip_id, **self.__dict__}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MusicFacts:
        values = {name: row.get(name) for name in ANALYSIS_SCHEMA.names if name != "clip_id"}
        values["chords"] = list(values["chords"] or [])
        return cls(**values)


def facts_to_table(clip_ids: list[str], facts: list[MusicFacts]) -> pa.Table:
    return pa.Table.from_pylist([f.to_row(c) for c, f in zip(clip_ids, facts, strict=True)], schema=ANALYSIS_SCHEMA)
