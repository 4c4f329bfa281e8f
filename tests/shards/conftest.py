"""Synthetic inputs for the shard tests: a clip table (CLIP_SCHEMA, real FLAC bytes) and a
label folder (LABEL_SCHEMA, EMBEDDING_SCHEMA, manifest, caption frequency), built in
milliseconds; and a sequential publish that runs the same functions the runners map.
Tests reach the builders through the `shard_inputs` fixture."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.clip import CLIP_SCHEMA, make_clip_id, seconds_start, seconds_total
from curation.encode import encode_flac, pcm_sha256, quantize_pcm16
from labeling.labels.table import EMBEDDING_SCHEMA, Candidate, LabelRow, labels_to_table
from labeling.vocab.table import caption_id
from shards.config import ShardConfig
from shards.plan import make_plan
from shards.publish import begin, finish
from shards.writer import write_shard

GENRES = ["jazz", "rock", "ambient", "folk", "techno", "classical", "blues", "funk"]
MOODS = ["calm", "energetic", "dark", "uplifting"]


@dataclasses.dataclass
class Curated:
    folder: str
    rows: dict[str, dict]  # clip_id -> row without audio
    flac: dict[str, bytes]  # clip_id -> audio_flac
    pcm: dict[str, np.ndarray]  # clip_id -> int16 (frames, channels)

    def sources(self) -> dict[str, str]:
        return {clip_id: row["source_id"] for clip_id, row in self.rows.items()}


def make_curated(
    folder: Path,
    sources: int = 6,
    clips_per_source: int = 4,
    seconds: float = 1.0,
    rate: int = 8000,
    channels: int = 2,
    licenses: list[str | None] | None = None,
    split_hints: dict[int, str] | None = None,
    parts: int = 2,
    rows_per_group: int = 3,
    last_clip_s: float | None = None,
) -> Curated:
    """A finished curation output: `clips/part-*.parquet`, `config.json`, `summary.json`."""
    rows, flac, pcm_by_id = {}, {}, {}
    all_rows = []
    for s in range(sources):
        source_id = hashlib.sha256(f"source-{s}".encode()).hexdigest()
        uri = f"/corpus/collection-{s % 2}/song {s}.wav"
        durations = [seconds] * clips_per_source
        if last_clip_s is not None:
            durations[-1] = last_clip_s
        start = 0
        for c, duration in enumerate(durations):
            frames = int(duration * rate)
            rng = np.random.default_rng(s * 1000 + c)
            pcm16 = quantize_pcm16((0.3 * rng.standard_normal((frames, channels))).astype(np.float32))
            clip_id = make_clip_id(source_id, start)
            row = {
                "clip_id": clip_id,
                "source_id": source_id,
                "source_uri": uri,
                "start_s": start / rate,
                "start_sample": start,
                "duration_s": frames / rate,
                "num_samples": frames,
                "sample_rate": rate,
                "channels": channels,
                "seconds_start": seconds_start(start / rate),
                "seconds_total": seconds_total(sum(durations)),
                "source_name": f"collection-{s % 2}",
                "license": (licenses[s] if licenses else "CC0-1.0"),
                "split_hint": (split_hints or {}).get(s),
                "metadata_json": None,
                "source_format": "wav",
                "source_codec": "pcm_s16le",
                "source_sample_rate": rate,
                "source_channels": channels,
                "source_duration_s": sum(durations),
                "source_bit_rate": rate * 16 * channels,
                "decoder": "soundfile",
                "title": f"Song {s}",
                "artist": f"Artist {s % 3}",
                "album": None,
                "genre": GENRES[s % len(GENRES)],
                "date": "2020",
                "comment": None,
                "tags_json": json.dumps({"title": f"Song {s}"}),
                "peak_dbfs": -3.0,
                "rms_dbfs": -12.0,
                "lufs": -14.0 - s,
                "clipping_ratio": 0.0,
                "silence_ratio": 0.0,
                "bandwidth_hz": 4000.0,
                "mono_as_stereo": False,
                "pcm_sha256": pcm_sha256(pcm16),
            }
            rows[clip_id] = dict(row)
            flac[clip_id] = row["audio_flac"] = encode_flac(pcm16, rate)
            pcm_by_id[clip_id] = pcm16
            all_rows.append(row)
            start += frames
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clips").mkdir(exist_ok=True)
    per_part = -(-len(all_rows) // parts)
    for p in range(parts):
        chunk = all_rows[p * per_part : (p + 1) * per_part]
        if chunk:
            pq.write_table(
                pa.Table.from_pylist(chunk, schema=CLIP_SCHEMA),
                folder / "clips" / f"part-{p:06d}.parquet",
                row_group_size=rows_per_group,
            )
    (folder / "config.json").write_text(json.dumps({"audio": {"sample_rate": rate, "channels": channels}}))
    (folder / "summary.json").write_text(json.dumps({"clips_kept": len(all_rows)}))
    return Curated(str(folder), rows, flac, pcm_by_id)


def label_row(clip_id: str, index: int, run: str = "run1") -> LabelRow:
    long_form = [f"A {MOODS[index % 4]} piece with a {GENRES[index % 8]} groove.", f"Recording number {index % 5}."]
    tags = [(GENRES[index % 8], "genre"), (MOODS[index % 4], "mood")]
    labels = [Candidate("llm_long", caption_id(t), t, None, 0.5) for t in long_form]
    labels += [Candidate("rater_long", caption_id("a rater sentence"), "a rater sentence", None, 0.4)]
    labels += [Candidate("tags", caption_id(t), t, aspect, 0.3) for t, aspect in tags]
    return LabelRow(
        clip_id,
        run,
        candidates=list(labels),
        labels=labels,
        prompt_candidates=[*long_form, "a rater sentence", ", ".join(t for t, _ in tags)],
        structured={aspect: [t] for t, aspect in tags},
        title=f"Title {index}",
        genre=GENRES[index % 8],
        # Musical facts as `soundry analyze` joins them; every fifth clip has no steady beat and no key.
        bpm=None if index % 5 == 0 else 80.0 + 10 * (index % 6),
        bpm_confidence=0.0 if index % 5 == 0 else 0.8,
        beat_count=0 if index % 5 == 0 else 20,
        key=None if index % 5 == 0 else ("A", "C", "G")[index % 3],
        mode=None if index % 5 == 0 else ("minor", "major")[index % 2],
        key_confidence=0.0 if index % 5 == 0 else 0.7,
        chords=[],
    )


def make_labels(
    folder: Path,
    clip_ids: list[str],
    run: str = "run1",
    dims: int = 8,
    skip: int = 0,
    relabel: dict[str, int] | None = None,
) -> str:
    """A finished label run for clip_ids (the first `skip` left unlabeled)."""
    labeled = clip_ids[skip:]
    # A clip's labels depend on its id only, so two runs over growing corpora agree on shared clips.
    rows = [label_row(c, (relabel or {}).get(c, int(c[:6], 16)), run) for c in labeled]
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "clip_embeddings").mkdir(exist_ok=True)
    pq.write_table(labels_to_table(rows), folder / "labels" / "part-000000.parquet")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(labeled), dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = pa.Table.from_pylist(
        [{"key": c, "embedding": v.tolist()} for c, v in zip(labeled, vectors, strict=True)], schema=EMBEDDING_SCHEMA
    )
    pq.write_table(embeddings, folder / "clip_embeddings" / "part-000000.parquet")
    frequency = [
        {
            "vocab": "tags",
            "caption_id": caption_id(g),
            "text": g,
            "topk_count": 20 - i,
            "plain_count": 12 - i,
            "balanced_count": 6,
        }
        for i, g in enumerate(GENRES)
    ]
    pq.write_table(pa.Table.from_pylist(frequency), folder / "caption_frequency.parquet")
    manifest = {
        "label_run": run,
        "clap": {"backend": "random", "model_id": "test", "checkpoint_sha256": "0" * 64},
        "vocabularies": {"llm_long": "v1", "tags": "v2"},
        "config": {"k": 10},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return str(folder)


def publish_inline(config: ShardConfig) -> dict:
    """The publish the runners do, in this process: plan, claim, every shard, commit."""
    plan = make_plan(config)
    begin(config, plan)
    return finish(config, plan, [write_shard(task, config) for task in plan.tasks])


@pytest.fixture(scope="session")
def shard_inputs() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        make_curated=make_curated, make_labels=make_labels, label_row=label_row, publish_inline=publish_inline
    )


@pytest.fixture(scope="session")
def curated(tmp_path_factory) -> Curated:
    return make_curated(tmp_path_factory.mktemp("curated") / "curated")


@pytest.fixture(scope="session")
def labeled_version(tmp_path_factory, curated) -> tuple[str, dict, str]:
    """A published version with labels: (version folder, manifest, label folder)."""
    base = tmp_path_factory.mktemp("labeled")
    labels = make_labels(base / "labels", sorted(curated.rows))
    config = ShardConfig(
        clips=curated.folder,
        labels=labels,
        root=str(base / "versions"),
        version="v1",
        splits={"fractions": {"train": 0.5, "valid": 0.5}},
        shards={"min_shards": 3},
    )
    return str(base / "versions" / "v1"), publish_inline(config), labels
