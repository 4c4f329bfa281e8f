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
        pa.field("beat_count", pa.int32(), nullable=False),  # beats tracked in the clip
        pa.field("meter", pa.string()),  # beats per bar as a time signature, "3/4" or "4/4"; null: not measured
        pa.field("key", pa.string()),  # tonic, e.g. "A"; null: unknown
        pa.field("mode", pa.string()),  # major | minor; null: unknown
        pa.field("key_confidence", pa.float32(), nullable=False),
        pa.field("chords", pa.list_(pa.string())),  # chord changes, e.g. ["A:min", "F:maj", ...]
        pa.field("progression", pa.string()),  # the first changes as Roman numerals, e.g. "i-bVI-bIII-bVII"
    ]
)
ANALYSIS_DIR = "analysis"
# The facts as the label table carries them, one column each: null where the clip was not analysed
# (no music section) or the fact is unknown; the confidences say which (0: analysed, unknown).
LABEL_COLUMNS = ("bpm", "bpm_confidence", "beat_count", "meter", "key", "mode", "key_confidence", "chords")
LABEL_FIELDS = [ANALYSIS_SCHEMA.field(name).with_nullable(True) for name in LABEL_COLUMNS]


@dataclass(frozen=True)
class MusicFacts:
    bpm: float | None = None
    bpm_confidence: float = 0.0
    beat_count: int = 0
    meter: str | None = None
    key: str | None = None
    mode: str | None = None
    key_confidence: float = 0.0
    chords: list[str] = field(default_factory=list)
    progression: str | None = None

    @property
    def key_name(self) -> str | None:
        """ "A minor", or None when the key is unknown."""
        return f"{self.key} {self.mode}" if self.key and self.mode else None

    def label_columns(self) -> dict[str, Any]:
        """The label table's columns of these facts (LABEL_COLUMNS)."""
        return {name: getattr(self, name) for name in LABEL_COLUMNS}

    def to_row(self, clip_id: str) -> dict[str, Any]:
        return {"clip_id": clip_id, **self.__dict__}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MusicFacts:
        values = {name: row.get(name) for name in ANALYSIS_SCHEMA.names if name != "clip_id"}
        values["chords"] = list(values["chords"] or [])
        return cls(**values)


def facts_to_table(clip_ids: list[str], facts: list[MusicFacts]) -> pa.Table:
    return pa.Table.from_pylist([f.to_row(c) for c, f in zip(clip_ids, facts, strict=True)], schema=ANALYSIS_SCHEMA)
