"""Small labeling inputs written the way `soundry curate` and `soundry vocab` write theirs:
a clip table (FLAC bytes, a few clips per row group, summary.json) and vocabulary tables
with a manifest; and windows and captions for CLAP's backends."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile

from curation.clip import CLIP_SCHEMA
from labeling.vocab.table import VOCAB_SCHEMA, caption_id, vocabulary_version

# (seconds, tone in Hz, title, artist, genre)
CLIPS = [
    (4.0, 220.0, "Blue Hour", "The Quiet Trio", "Jazz"),
    (12.5, 440.0, "Static", "Noise Unit", "Rock; Metal"),
    (2.5, 880.0, "Dawn", None, None),
    (6.0, 330.0, "Drift", "Ambient Fields", "Ambient"),
    (3.0, 660.0, "Pulse", "Noise Unit", "Electronic"),
]
LONG_FORM = [
    "A calm jazz trio with soft brushed drums.",
    "Distorted guitars and pounding drums in a loud rock song.",
    "A slow ambient drone with evolving pads.",
    "Bright electronic beat with a driving kick.",
    "A solo piano piece, gentle and sad.",
    "Fast metal riffs with screamed vocals.",
]
TAGS = [
    ("jazz", "genre"),
    ("rock", "genre"),
    ("ambient", "genre"),
    ("electronic", "genre"),
    ("piano", "instrument"),
    ("drums", "instrument"),
    ("synthesizer", "instrument"),
    ("guitar", "instrument"),
    ("calm", "mood"),
    ("energetic", "mood"),
    ("dark", "mood"),
    ("fast", "tempo"),
]


def clip_rows(clips=CLIPS, rate: int = 44100) -> list[dict]:
    rows = []
    for index, (seconds, hz, title, artist, genre) in enumerate(clips):
        t = np.arange(int(seconds * rate)) / rate
        signal = 0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * (index + 1) * t))
        buffer = io.BytesIO()
        soundfile.write(buffer, np.stack([signal, signal * 0.5], axis=1), rate, format="FLAC", subtype="PCM_16")
        source = hashlib.sha256(f"source-{index}".encode()).hexdigest()
        rows.append(
            {
                "clip_id": f"{source[:20]}-{0:012d}",
                "source_id": source,
                "source_uri": f"/corpus/{index}.flac",
                "start_s": 0.0,
                "start_sample": 0,
                "duration_s": seconds,
                "num_samples": len(t),
                "sample_rate": rate,
                "channels": 2,
                "seconds_start": 0,
                "seconds_total": int(np.ceil(seconds)),
                "title": title,
                "artist": artist,
                "genre": genre,
                "pcm_sha256": hashlib.sha256(signal.tobytes()).hexdigest(),
                "audio_flac": buffer.getvalue(),
            }
        )
    return rows


def write_clip_table(root: Path, parts: int = 2, clips=CLIPS) -> str:
    return write_clip_parts(root, clip_rows(clips), parts)


def write_clip_parts(root: Path, rows: list[dict], parts: int = 2) -> str:
    """Clip rows as a curated folder: dealt round-robin into `parts` parts, two rows per row group."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        table = pa.Table.from_pylist(rows[part::parts], schema=CLIP_SCHEMA)
        pq.write_table(table, root / "clips" / f"part-{part:06d}.parquet", row_group_size=2)
    (root / "summary.json").write_text("{}")
    return str(root)


def write_vocabularies(
    root: Path, long_form=LONG_FORM, tags=TAGS, rater_long: list[str] | None = None, evaluation: bool = False
) -> str:
    """llm_long and tags, and rater_long sentences of source rater:evalset when given (an
    evaluation file too when `evaluation`, as the vocab stage records it)."""
    root.mkdir(parents=True, exist_ok=True)
    tables = {
        "llm_long": [{"text": t, "kind": "long_form", "aspect": None, "source": "template"} for t in long_form],
        "tags": [{"text": t, "kind": "short_form", "aspect": a, "source": "builtin"} for t, a in tags],
    }
    if rater_long:
        tables["rater_long"] = [
            {"text": t, "kind": "long_form", "aspect": None, "source": "rater:evalset"} for t in rater_long
        ]
    manifest = {}
    for name, rows in tables.items():
        table = pa.Table.from_pylist(
            [{**r, "vocab": name, "caption_id": caption_id(r["text"]), "provenance": None} for r in rows],
            schema=VOCAB_SCHEMA,
        )
        version = vocabulary_version(table)
        pq.write_table(table, root / f"{name}-{version}.parquet")
        manifest[name] = {"file": f"{name}-{version}.parquet", "version": version}
    evaluation_sources = ["rater:evalset"] if evaluation else []
    (root / "manifest.json").write_text(
        json.dumps({"vocabularies": manifest, "evaluation_sources": evaluation_sources})
    )
    return str(root)


def label_job_settings(clips: str, vocab: str, output: Path, **overrides) -> dict:
    """A label job on HTSAT-mini with random weights, in small units and batches."""
    settings = {
        "clips": clips,
        "vocab": vocab,
        "output": str(output),
        "clap": {"backend": "random", "architecture": "HTSAT-mini", "audio_batch_size": 2, "text_batch_size": 8},
        "clips_per_unit": 2,
        "captions_per_unit": 8,
        "topk": {"k": 4},
        "balance": {"labels_per_vocabulary": {"llm_long": 2, "tags": 3}},
        "runner": {"name": "local", "workers": 1},
    }
    for key, value in overrides.items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) and key in settings else value
    return settings


CLAP_TEXTS = [
    "a calm solo piano piece",
    "distorted electric guitars and pounding drums",
    "jazz",
    "ambient drone, 60 bpm",
]


def clap_windows(count: int, seconds: float = 10.0) -> np.ndarray:
    """Tones and noise, different in every window, as CLAP's int16 input (48 kHz, 10 s)."""
    t = np.arange(int(48000 * seconds)) / 48000
    rng = np.random.default_rng(count)
    rows = [0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(len(t)) for i in range(count)]
    out = np.zeros((count, 480000), dtype=np.int16)
    out[:, : len(t)] = (np.asarray(rows) * 32767).astype(np.int16)
    return out
