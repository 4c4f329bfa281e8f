"""The run summary: what went in, what came out, what was rejected and why, how fast."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import pyarrow.compute as pc

from curation.clip import written_clip_parts
from curation.core.storage import join, list_files, read_table
from curation.unit import UnitStats


def summarize(
    output: str, stats: Sequence[UnitStats], wall_s: float, phases: dict[str, float], runner: str, workers: int
) -> dict[str, Any]:
    """Kept clips are counted from the clip table itself, after deduplication."""
    kept_clips = 0
    kept_seconds = 0.0
    for part in written_clip_parts(output):
        durations = read_table(part, columns=["duration_s"]).column("duration_s")
        kept_clips += len(durations)
        kept_seconds += pc.sum(durations).as_py() or 0.0
    rejected_clips: collections.Counter[str] = collections.Counter()
    rejected_files: collections.Counter[str] = collections.Counter()
    decoders: collections.Counter[str] = collections.Counter()
    for unit in stats:
        rejected_clips.update(unit.rejected_clips)
        rejected_files.update(unit.rejected_files)
        decoders.update(unit.decoders)
    dedup = list_files(join(output, "rejects"), "part-dedup.parquet")
    duplicates = read_table(dedup[0], columns=["clip_id"]).num_rows if dedup else 0
    if duplicates:
        rejected_clips["duplicate"] += duplicates
    fresh = [u for u in stats if not u.resumed]
    fresh_seconds = sum(u.seconds_in for u in fresh)
    return {
        "output": output,
        "runner": runner,
        "workers": workers,
        "units": len(stats),
        "units_resumed": len(stats) - len(fresh),
        "files_in": sum(u.files for u in stats),
        "bytes_in": sum(u.bytes_in for u in stats),
        "hours_in": sum(u.seconds_in for u in stats) / 3600,
        "clips_kept": kept_clips,
        "hours_out": kept_seconds / 3600,
        "files_rejected": dict(sorted(rejected_files.items())),
        "clips_rejected": dict(sorted(rejected_clips.items())),
        "decoders": dict(sorted(decoders.items())),
        "peak_rss_mb_per_worker": max((u.peak_rss_mb for u in fresh), default=0.0),
        "wall_s": wall_s,
        "phases_s": phases,
        # Throughput of the work done in this run (resumed units cost nothing).
        "x_realtime": fresh_seconds / wall_s if wall_s > 0 else 0.0,
    }
