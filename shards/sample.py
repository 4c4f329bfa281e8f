"""The shard sample: its key, its members, its `json`, and its row in the shard's sidecar.

A sample is `{key}.flac` (the clip table's bytes, not re-encoded), `{key}.json` and, for a
labeled version, `{key}.clap.npy`; pre-encoded versions add `{key}.latent.npy`. The json
follows one declared schema for every sample (free-form dicts are kept as JSON strings,
structured fields as a list) and holds no nulls: an unknown value is an absent key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Collection
from typing import Any

import numpy as np
import pyarrow as pa

from curation.clip import TAG_COLUMNS
from curation.core.errors import UserError
from labeling.labels.table import ASPECT_VALUES, CANDIDATE, Candidate, LabelRow
from labeling.music.facts import LABEL_COLUMNS, LABEL_FIELDS
from labeling.vocab.table import caption_id, normalize_caption

# webdataset splits a member name at its first dot into key and extension, and treats a
# slash as a folder: a key has neither.
SAFE_KEY = re.compile(r"[A-Za-z0-9_-]+")

QUALITY_COLUMNS = ("peak_dbfs", "rms_dbfs", "lufs", "clipping_ratio", "silence_ratio", "bandwidth_hz", "mono_as_stereo")
SOURCE_FACT_COLUMNS = (
    "source_format",
    "source_codec",
    "source_sample_rate",
    "source_channels",
    "source_duration_s",
    "source_bit_rate",
    "decoder",
)
CLIP_COLUMNS = (
    "clip_id",
    "source_id",
    "source_uri",
    "source_name",
    "license",
    "start_s",
    "duration_s",
    "num_samples",
    "sample_rate",
    "channels",
    "seconds_start",
    "seconds_total",
)

SIDECAR_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("index", pa.int32(), nullable=False),  # position of the sample in its tar
        pa.field("split", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("source_name", pa.string()),
        pa.field("license", pa.string()),
        pa.field("start_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("num_samples", pa.int64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int16()),
        pa.field("seconds_start", pa.int32()),
        pa.field("seconds_total", pa.int32()),
        *[pa.field(name, pa.string()) for name in ("title", "artist", "album", "genre")],
        *[pa.field(name, pa.bool_() if name == "mono_as_stereo" else pa.float32()) for name in QUALITY_COLUMNS],
        pa.field("pcm_sha256", pa.string(), nullable=False),
        pa.field("flac_bytes", pa.int64(), nullable=False),
        pa.field("label_run", pa.string()),
        pa.field("labels", pa.list_(CANDIDATE)),
        pa.field("prompt_candidates", pa.list_(pa.string())),
        pa.field("structured", pa.list_(ASPECT_VALUES)),
        pa.field("text", pa.string()),
        pa.field("label_hash", pa.string()),  # what `versions diff` compares to call a clip relabeled
        pa.field("has_clap", pa.bool_(), nullable=False),
        pa.field("music", pa.struct(LABEL_FIELDS)),  # the sample json's `music`; null: not analysed
    ]
)


def _strings(*names: str) -> list[pa.Field]:
    return [pa.field(name, pa.string()) for name in names]


# The `json` member's schema. A field whose value is unknown is absent from the json (never
# null: stable-audio-tools' DataLoader collate cannot take None); lists are always present,
# possibly empty. Readers that take this schema from the card read absent keys as nulls.
RECORD_SCHEMA = pa.schema(
    [
        *_strings("key", "split", "clip_id", "source_id", "source_uri", "source_name", "license"),
        pa.field("start_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        *[
            pa.field(name, pa.int64())
            for name in ("num_samples", "sample_rate", "channels", "seconds_start", "seconds_total")
        ],
        pa.field(
            "source",
            pa.struct(
                [
                    *_strings("format", "codec"),
                    pa.field("sample_rate", pa.int64()),
                    pa.field("channels", pa.int64()),
                    pa.field("duration_s", pa.float64()),
                    pa.field("bit_rate", pa.int64()),
                    *_strings("decoder"),
                ]
            ),
        ),
        *_strings(*TAG_COLUMNS, "tags_json", "metadata_json"),
        pa.field(
            "quality",
            pa.struct(
                [pa.field(name, pa.bool_() if name == "mono_as_stereo" else pa.float64()) for name in QUALITY_COLUMNS]
            ),
        ),
        *_strings("pcm_sha256", "label_run"),
        pa.field(
            "labels",
            pa.list_(pa.struct([*_strings("vocab", "caption_id", "text", "aspect"), pa.field("score", pa.float64())])),
        ),
        *[pa.field(name, pa.list_(pa.string())) for name in ("prompt_candidates", "long_form", "tag_chunks")],
        pa.field(
            "structured",
            pa.list_(pa.struct([pa.field("aspect", pa.string()), pa.field("values", pa.list_(pa.string()))])),
        ),
        *_strings("text", "prompt"),
        # Tempo, meter, key and chords measured by `soundry analyze` (the label table's columns of the same
        # names): absent when the version's labels were not analysed; an unknown fact is an absent key in it.
        pa.field(
            "music",
            pa.struct(
                [
                    *[pa.field(n, pa.float64()) for n in ("bpm", "bpm_confidence")],
                    pa.field("beat_count", pa.int64()),
                    *_strings("meter", "key", "mode"),
                    pa.field("key_confidence", pa.float64()),
                    pa.field("chords", pa.list_(pa.string())),
                ]
            ),
        ),
    ]
)


# The optional members, as readers that decode .npy see them.
OPTIONAL_MEMBERS = {
    "clap.npy": pa.list_(pa.float32()),  # (D,)
    "latent.npy": pa.list_(pa.list_(pa.float32())),
}  # (C, L)


def sample_schema(members: list[str]) -> pa.Schema:
    """A sample with these members as readers that group tar members see it (webdataset, HF datasets)."""
    fields = [
        *_strings("__key__", "__url__"),
        pa.field("flac", pa.binary()),
        pa.field("json", pa.struct(list(RECORD_SCHEMA))),
    ]
    return pa.schema(fields + [pa.field(name, kind) for name, kind in OPTIONAL_MEMBERS.items() if name in members])


class UnsafeKey(UserError):
    """A clip id that cannot be a WebDataset key."""


def check_key(key: str) -> str:
    if not SAFE_KEY.fullmatch(key):
        raise UnsafeKey(f"clip id {key!r} cannot be a WebDataset key: only letters, digits, '-' and '_' are safe")
    return key


class CaptionFilter:
    """Removes excluded captions and vocabularies from a clip's labels and prompts."""

    def __init__(self, captions: Collection[str] = (), vocabularies: Collection[str] = ()) -> None:
        # An entry may be a caption's text or its id; both are matched through the id.
        self.caption_ids = {entry if _looks_like_caption_id(entry) else caption_id(entry) for entry in captions}
        self.vocabularies = set(vocabularies)

    def __bool__(self) -> bool:
        return bool(self.caption_ids or self.vocabularies)

    def apply(self, row: LabelRow) -> LabelRow:
        if not self:
            return row
        dropped = self.caption_ids | {
            c.caption_id for c in (*row.labels, *row.candidates) if c.vocab in self.vocabularies
        }
        prompts = [kept for prompt in row.prompt_candidates if (kept := self._without(prompt, dropped))]
        structured = {
            aspect: kept
            for aspect, values in row.structured.items()
            if (kept := [v for v in values if caption_id(v) not in dropped])
        }
        return dataclasses.replace(
            row,
            candidates=[c for c in row.candidates if c.caption_id not in dropped],
            labels=[c for c in row.labels if c.caption_id not in dropped],
            prompt_candidates=prompts,
            structured=structured,
        )

    @staticmethod
    def _without(prompt: str, dropped: set[str]) -> str:
        """A long-form prompt is one caption; a tag chunk is captions joined by commas."""
        if caption_id(prompt) in dropped:
            return ""
        items = [item.strip() for item in prompt.split(",")]
        if len(items) > 1 and any(caption_id(i) in dropped for i in items):
            return ", ".join(i for i in items if caption_id(i) not in dropped)
        return prompt


def _looks_like_caption_id(entry: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{16}", entry))


def sample_json(clip: dict[str, Any], split: str, label: LabelRow | None) -> dict[str, Any]:
    """The sample's `json`: everything a trainer or another tool needs besides the audio."""
    record: dict[str, Any] = {"key": clip["clip_id"], "split": split}
    record.update({name: clip.get(name) for name in CLIP_COLUMNS})
    record["source"] = {name.removeprefix("source_"): clip.get(name) for name in SOURCE_FACT_COLUMNS}
    record.update({name: clip.get(name) for name in TAG_COLUMNS})
    record["tags_json"] = clip.get("tags_json")
    record["metadata_json"] = clip.get("metadata_json")
    record["quality"] = {name: _plain(clip.get(name)) for name in QUALITY_COLUMNS}
    record["pcm_sha256"] = clip["pcm_sha256"]
    structured = label.structured if label else metadata_fields(clip)
    labels = label.labels if label else []
    long_form, chunks = _split_prompts(label)
    if label:
        for name in ("title", "artist", "album", "genre"):
            record[name] = getattr(label, name) or record[name]
    record["label_run"] = label.label_run if label else None
    record["labels"] = [_candidate(c) for c in labels]
    record["prompt_candidates"] = long_form + chunks
    record["long_form"] = long_form
    record["tag_chunks"] = chunks
    record["structured"] = [{"aspect": aspect, "values": list(values)} for aspect, values in sorted(structured.items())]
    if label and label.bpm_confidence is not None:  # analysed (a confidence is 0, never null, for unknown facts)
        record["music"] = _music(label)
    # One caption for tools that read a single one (stable-audio-tools copies `text` to `prompt`).
    record["text"] = record["prompt"] = (
        long_form or chunks or [", ".join(v for _, vs in sorted(structured.items()) for v in vs)]
    )[0]
    return without_nulls(record)


def without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every None-valued key dropped, in nested dicts and in lists of dicts too."""
    return {key: _without_nulls(value) for key, value in record.items() if value is not None}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return without_nulls(value)
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def metadata_fields(clip: dict[str, Any]) -> dict[str, list[str]]:
    """Prompt fields of an unlabeled clip: its container tags, as Stable Audio built prompts from metadata."""
    return {name: [clip[name]] for name in ("genre", "artist", "title", "album") if clip.get(name)}


def _split_prompts(label: LabelRow | None) -> tuple[list[str], list[str]]:
    """The label table's prompt candidates are long-form labels, then tag chunks; tell them apart."""
    if label is None:
        return [], []
    long_texts = {normalize_caption(c.text) for c in label.labels if c.aspect is None}
    long_form = [p for p in label.prompt_candidates if normalize_caption(p) in long_texts]
    chunks = [p for p in label.prompt_candidates if normalize_caption(p) not in long_texts]
    return long_form, chunks


def _music(label: LabelRow) -> dict[str, Any]:
    """The label row's facts, rounded as measured (the table stores float32)."""
    music = {name: getattr(label, name) for name in LABEL_COLUMNS}
    for name, digits in (("bpm", 2), ("bpm_confidence", 4), ("key_confidence", 4)):
        if music[name] is not None:
            music[name] = round(float(music[name]), digits)
    music["chords"] = list(music["chords"] or [])
    return music


def _candidate(c: Candidate) -> dict[str, Any]:
    return {"vocab": c.vocab, "caption_id": c.caption_id, "text": c.text, "aspect": c.aspect, "score": float(c.score)}


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, np.floating) else value


def label_hash(record: dict[str, Any]) -> str | None:
    if "label_run" not in record:
        return None
    labelled = {name: record[name] for name in ("labels", "prompt_candidates", "structured")}
    # Hashed with every label's aspect present (null for long-form), as versions without nulls
    # dropped from their json hashed it, so that `versions diff` across them compares labels only.
    labelled["labels"] = [{**label, "aspect": label.get("aspect")} for label in record["labels"]]
    return hashlib.sha256(json.dumps(labelled, sort_keys=True).encode()).hexdigest()[:16]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def members(
    key: str, flac: bytes, record: dict[str, Any], clap: np.ndarray | None = None, latent: np.ndarray | None = None
) -> list[tuple[str, bytes]]:
    """The tar members of one sample, in the order they are written."""
    check_key(key)
    out = [(f"{key}.flac", flac), (f"{key}.json", json.dumps(record, ensure_ascii=False, sort_keys=True).encode())]
    if clap is not None:
        out.append((f"{key}.clap.npy", npy_bytes(np.asarray(clap, dtype=np.float32))))
    if latent is not None:
        out.append((f"{key}.latent.npy", npy_bytes(latent)))
    return out


def sidecar_row(record: dict[str, Any], shard: str, index: int, flac_bytes: int, has_clap: bool) -> dict[str, Any]:
    row = {name: record.get(name) for name in SIDECAR_SCHEMA.names}
    row.update(record["quality"])
    row.update(shard=shard, index=index, flac_bytes=flac_bytes, has_clap=has_clap, label_hash=label_hash(record))
    labeled = "label_run" in record
    row["prompt_candidates"] = record["prompt_candidates"] if labeled else None
    row["labels"] = record["labels"] if labeled else None
    return row
