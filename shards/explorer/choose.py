"""Which clips the explorer page shows: a bounded sample, the same on every run, that covers every
split and every top label (a clip's highest-scoring label), read from the sidecars (no audio)."""

from __future__ import annotations

import hashlib
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
    so that small groups are all shown and large ones do not crowd them out."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for shard in manifest["shards"]:
        for row in read_table(join(version, shard["sidecar"]), columns=COLUMNS).to_pylist():
            groups[(row["split"], top_label(row))].append(row)
    order = {group: sorted(rows, key=lambda row: _rank(seed, row["key"])) for group, rows in sorted(groups.items())}
    chosen: list[dict[str, Any]] = []
    turn = 0
    while len(chosen) < limit and any(turn < len(rows) for rows in order.values()):
        chosen += [rows[turn] for rows in order.values() if turn < len(rows)][: limit - len(chosen)]
        turn += 1
    return chosen


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()
