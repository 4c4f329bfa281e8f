"""Which clips the explorer page shows: a bounded sample, the same on every run, that covers every
split and every top label (a clip's highest-scoring label), read from the sidecars (no audio)."""

from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from typing import Any

from curation.core.storage import join, read_table

# Sidecar columns the page shows.
COLUMNS = [
    "key",
    "shard",
    "split",
    "source_uri",
    "source_name",
    "license",
    "start_s",
    "duration_s",
    "title",
    "artist",
    "genre",
    "lufs",
    "peak_dbfs",
    "silence_ratio",
    "clipping_ratio",
    "bandwidth_hz",
    "labels",
    "prompt_candidates",
    "structured",
    "text",
]


def top_label(row: dict[str, Any]) -> str:
    labels = row.get("labels") or []
    return max(labels, key=lambda label: label["score"])["text"] if labels else "(unlabeled)"


def choose_clips(version: str, manifest: dict[str, Any], limit: int, seed: int) -> list[dict[str, Any]]:
    """Up to `limit` sidecar rows: each (split, top label) group in a seeded order, taken in turns,
    so that small groups are all shown and large ones do not crowd them out. Holds at most `limit`
    small entries per group (groups: splits x top labels), not a row per clip of the version."""
    groups: dict[tuple[str, str], list[tuple[bytes, str, str]]] = defaultdict(list)
    for shard in manifest["shards"]:
        table = read_table(join(version, shard["sidecar"]), columns=["key", "split", "labels"])
        for row in table.to_pylist():
            heap = groups[(row["split"], top_label(row))]
            # A max-heap on rank (negated bytes compare badly, so invert them) keeps the `limit` smallest.
            entry = (_inverted(_rank(seed, row["key"])), row["key"], shard["name"])
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    order = [sorted(heap, reverse=True) for _, heap in sorted(groups.items())]
    chosen: list[tuple[str, str]] = []
    turn = 0
    while len(chosen) < limit and any(turn < len(entries) for entries in order):
        chosen += [(entries[turn][1], entries[turn][2]) for entries in order if turn < len(entries)][
            : limit - len(chosen)
        ]
        turn += 1
    return _rows(version, manifest, chosen)


def _rows(version: str, manifest: dict[str, Any], chosen: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The chosen clips' sidecar rows, in the chosen order; only the shards holding them are read."""
    wanted = defaultdict(set)
    for key, shard in chosen:
        wanted[shard].add(key)
    rows: dict[str, dict[str, Any]] = {}
    for shard in manifest["shards"]:
        if shard["name"] in wanted:
            table = read_table(join(version, shard["sidecar"]), columns=COLUMNS)
            rows.update((row["key"], row) for row in table.to_pylist() if row["key"] in wanted[shard["name"]])
    return [rows[key] for key, _ in chosen]


def _inverted(rank: bytes) -> bytes:
    return bytes(255 - b for b in rank)


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()
