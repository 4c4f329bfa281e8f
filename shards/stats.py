"""A version's statistics, computed from its sidecars (never the audio): `stats.json`.

Counts and hours per split, license and source collection, distributions of duration and
loudness, the measured tempi, keys and modes (where the labels joined an analysis), the most
frequent labels, and, from the label run, how often captions were in
clips' top-K lists against how often the frequency-balanced draw picked them.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

import numpy as np

from curation.core.storage import exists, join, read_table
from shards.writer import ShardResult, sidecar_url

CAPTION_FREQUENCY = "caption_frequency.parquet"
TOP_LABELS = 30
TOP_CAPTIONS = 40
_COLUMNS = [
    "split",
    "source_id",
    "source_name",
    "license",
    "duration_s",
    "lufs",
    "sample_rate",
    "channels",
    "labels",
    "has_clap",
    "music",
]


def compute_stats(version: str, results: Iterable[ShardResult], labels: str | None) -> dict[str, Any]:
    splits: dict[str, dict[str, Any]] = {}
    sources: dict[str, set[str]] = collections.defaultdict(set)
    per_license: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    per_source: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    top_labels: collections.Counter[tuple[str, str]] = collections.Counter()
    durations, loudness = [], []
    audio: set[tuple[int, int]] = set()
    with_clap = 0
    music = MusicCounts()
    for result in results:
        table = read_table(sidecar_url(version, result.name), columns=_COLUMNS).to_pydict()
        split = splits.setdefault(result.split, {"clips": 0, "hours": 0.0, "shards": 0, "bytes": 0})
        split["clips"] += result.count
        split["shards"] += 1
        split["bytes"] += result.bytes
        split["hours"] += sum(table["duration_s"]) / 3600
        sources[result.split].update(table["source_id"])
        for license, collection, seconds in zip(
            table["license"], table["source_name"], table["duration_s"], strict=True
        ):
            for counts, name in ((per_license, license or "unknown"), (per_source, collection or "unnamed")):
                counts[name][0] += 1
                counts[name][1] += seconds / 3600
        durations.extend(table["duration_s"])
        loudness.extend(v for v in table["lufs"] if v is not None and np.isfinite(v))
        audio.update(zip(table["sample_rate"], table["channels"], strict=True))
        with_clap += sum(table["has_clap"])
        music.add(table["music"])
        for labels_of_clip in table["labels"]:
            top_labels.update((label["vocab"], label["text"]) for label in labels_of_clip or [])
    for name, split in splits.items():
        split["sources"] = len(sources[name])
    if len(audio) > 1:
        raise ValueError(f"{version}: clips of several audio formats {sorted(audio)}; publish one curated table")
    sample_rate, channels = next(iter(audio), (None, None))
    return {
        "audio": {"sample_rate": sample_rate, "channels": channels},
        "members": ["flac", "json", *(["clap.npy"] if with_clap else [])],
        "splits": dict(sorted(splits.items())),
        "per_license": _named_counts(per_license),
        "per_source": _named_counts(per_source),
        "durations_s": _histogram(durations, bins=30),
        "loudness_lufs": _histogram(loudness, bins=30),
        "top_labels": [
            {"vocab": vocab, "text": text, "clips": n} for (vocab, text), n in top_labels.most_common(TOP_LABELS)
        ],
        "caption_frequency": _caption_frequency(labels),
        "music": music.summary(),
    }


class MusicCounts:
    """The measured tempi (kept, one float per clip: the BPM histogram's edges need them all) and key counts."""

    def __init__(self) -> None:
        self.analysed = 0
        self.bpms: list[float] = []
        self.keys: collections.Counter[str] = collections.Counter()
        self.modes: collections.Counter[str] = collections.Counter()

    def add(self, facts: list[dict[str, Any] | None]) -> None:
        for fact in facts:
            if fact is None:  # not analysed
                continue
            self.analysed += 1
            if fact["bpm"] is not None:
                self.bpms.append(fact["bpm"])
            if fact["key"] is not None:
                self.keys[f"{fact['key']} {fact['mode']}"] += 1
                self.modes[fact["mode"]] += 1

    def summary(self) -> dict[str, Any] | None:
        """None when no clip was analysed (a version whose labels have no music section)."""
        if not self.analysed:
            return None
        return {
            "analysed": self.analysed,
            "tempo_known": len(self.bpms),
            "key_known": sum(self.keys.values()),
            "bpm": _histogram(self.bpms, bins=20),
            "keys": dict(self.keys.most_common()),
            "modes": dict(sorted(self.modes.items())),
        }


def _named_counts(counts: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"clips": int(n), "hours": hours} for name, (n, hours) in sorted(counts.items())}


def _histogram(values: list[float], bins: int) -> dict[str, Any]:
    if not values:
        return {"edges": [], "counts": [], "min": None, "max": None, "mean": None}
    array = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(array, bins=bins)
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "min": float(array.min()),
        "max": float(array.max()),
        "mean": float(array.mean()),
    }


def _caption_frequency(labels: str | None) -> list[dict[str, Any]]:
    """The captions drawn most often without balancing (plain_count), with how often the
    frequency-balanced draw picked them (balanced_count) and how often they were in a top-K."""
    if not labels or not exists(join(labels, CAPTION_FREQUENCY)):
        return []
    table = read_table(join(labels, CAPTION_FREQUENCY)).to_pylist()
    table.sort(key=lambda r: (-(r.get("plain_count") or 0), r["text"]))
    keep = ("vocab", "caption_id", "text", "topk_count", "plain_count", "balanced_count")
    return [{k: row.get(k) for k in keep} for row in table[:TOP_CAPTIONS]]
