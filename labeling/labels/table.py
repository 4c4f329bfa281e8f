"""The label table: the contract between `soundry label` and `soundry shard`.

A label folder holds `labels/part-*.parquet` (LABEL_SCHEMA, one row per clip, no audio),
`clip_embeddings/part-*.parquet` (EMBEDDING_SCHEMA: the clips' CLAP audio embeddings, which
the shards carry as `clap.npy`) and `manifest.json`, written last (label_run, CLAP model and
checkpoint hash, vocabulary versions, config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from labeling.music.facts import LABEL_FIELDS

CANDIDATE = pa.struct(
    [
        pa.field("vocab", pa.string()),
        pa.field("caption_id", pa.string()),
        pa.field("text", pa.string()),
        pa.field("aspect", pa.string()),  # null for long-form captions
        pa.field("score", pa.float32()),  # cosine similarity to the clip's audio embedding
    ]
)
ASPECT_VALUES = pa.struct([pa.field("aspect", pa.string()), pa.field("values", pa.list_(pa.string()))])

LABEL_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("label_run", pa.string(), nullable=False),
        pa.field("candidates", pa.list_(CANDIDATE)),  # top-K per vocabulary, best first within each
        pa.field("labels", pa.list_(CANDIDATE)),  # the K' frequency-balanced draws per vocabulary
        pa.field("prompt_candidates", pa.list_(pa.string())),  # long-form labels, then tag chunks
        pa.field("structured", pa.list_(ASPECT_VALUES)),  # fields by aspect, for Stable Audio style prompts
        pa.field("title", pa.string()),
        pa.field("artist", pa.string()),
        pa.field("album", pa.string()),
        pa.field("genre", pa.string()),
        # Musical facts measured by `soundry analyze` (labeling.music.facts.LABEL_COLUMNS): bpm, bpm_confidence,
        # beat_count, meter, key ("A"), mode ("minor"), key_confidence, chords; null when not analysed or unknown.
        *LABEL_FIELDS,
    ]
)

EMBEDDING_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # clip_id or caption_id
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # L2-normalized
    ]
)

LABELS_DIR = "labels"
CLIP_EMBEDDINGS_DIR = "clip_embeddings"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Candidate:
    vocab: str
    caption_id: str
    text: str
    aspect: str | None
    score: float


@dataclass(frozen=True)
class LabelRow:
    clip_id: str
    label_run: str
    candidates: list[Candidate] = field(default_factory=list)
    labels: list[Candidate] = field(default_factory=list)
    prompt_candidates: list[str] = field(default_factory=list)
    structured: dict[str, list[str]] = field(default_factory=dict)
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    bpm: float | None = None
    bpm_confidence: float | None = None
    beat_count: int | None = None
    meter: str | None = None
    key: str | None = None
    mode: str | None = None
    key_confidence: float | None = None
    chords: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        row["candidates"] = [c.__dict__ for c in self.candidates]
        row["labels"] = [c.__dict__ for c in self.labels]
        row["structured"] = [{"aspect": a, "values": v} for a, v in self.structured.items()]
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> LabelRow:
        values = {name: row.get(name) for name in LABEL_SCHEMA.names}
        values["candidates"] = [Candidate(**c) for c in row.get("candidates") or []]
        values["labels"] = [Candidate(**c) for c in row.get("labels") or []]
        values["prompt_candidates"] = list(row.get("prompt_candidates") or [])
        values["structured"] = {s["aspect"]: list(s["values"]) for s in row.get("structured") or []}
        return cls(**values)


def labels_to_table(rows: list[LabelRow]) -> pa.Table:
    return pa.Table.from_pylist([r.to_dict() for r in rows], schema=LABEL_SCHEMA)


def labels_from_table(table: pa.Table) -> list[LabelRow]:
    return [LabelRow.from_dict(r) for r in table.cast(LABEL_SCHEMA).to_pylist()]
