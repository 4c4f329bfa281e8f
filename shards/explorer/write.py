"""`explore/` of a version: index.html, its CSS and JavaScript, and one Opus excerpt per clip shown
(explore/audio/{key}.opus). Static files only: it works from a local folder or any static host."""

from __future__ import annotations

import concurrent.futures
import os
from collections import Counter, defaultdict
from importlib import resources
from typing import Any

from curation.core.storage import exists, join, list_files, read_table, write_bytes_atomic
from shards.explorer.choose import choose_clips
from shards.explorer.excerpt import opus_excerpt
from shards.explorer.page import render_page
from shards.loader.tars import read_tar_samples

EXPLORE_DIR = "explore"
PAGE = f"{EXPLORE_DIR}/index.html"
CLIPS_SHOWN = 500
EXCERPT_SECONDS = 8.0
EXAMPLES_PER_REASON = 3


def write_explorer(
    version: str,
    manifest: dict[str, Any],
    stats: dict[str, Any],
    plots: list[str],
    labels: str | None = None,
    clips_folder: str | None = None,
    limit: int = CLIPS_SHOWN,
    seed: int = 0,
) -> str:
    """Write the explorer into the version folder (before its manifest); return the page's path in it."""
    clips = choose_clips(version, manifest, limit, seed)
    wanted: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        wanted[clip["shard"]].add(clip["key"])
    # Opus encoding is the cost (0.7 s per 8 s excerpt measured on a busy 2-core machine); libsndfile releases the GIL,
    # so threads encode one shard's chosen clips in parallel. One shard's chosen FLAC is held at a time.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for shard in manifest["shards"]:
            keys = wanted.get(shard["name"])
            if not keys:
                continue
            chosen = [s for s in read_tar_samples(join(version, shard["tar"])) if s["__key__"] in keys]
            excerpts = pool.map(lambda sample: opus_excerpt(sample["flac"], EXCERPT_SECONDS), chosen)
            for sample, excerpt in zip(chosen, excerpts, strict=True):
                write_bytes_atomic(join(version, EXPLORE_DIR, "audio", f"{sample['__key__']}.opus"), excerpt)
    static = resources.files("shards.explorer").joinpath("static")
    for name in ("explorer.css", "explorer.js"):
        write_bytes_atomic(join(version, EXPLORE_DIR, name), static.joinpath(name).read_bytes())
    page = render_page(manifest, stats, clips, caption_counts(labels), plots, curation_rejects(clips_folder))
    write_bytes_atomic(join(version, PAGE), page.encode())
    return PAGE


def caption_counts(labels: str | None) -> dict[str, int]:
    """caption_id -> clips whose top-K held the caption (the frequency the balanced draw divides by)."""
    if not labels or not exists(join(labels, "caption_frequency.parquet")):
        return {}
    table = read_table(join(labels, "caption_frequency.parquet"), columns=["caption_id", "topk_count"])
    return dict(zip(table["caption_id"].to_pylist(), table["topk_count"].to_pylist(), strict=True))


def curation_rejects(clips_folder: str | None) -> dict[str, Any]:
    """Curation's rejects by (step, reason), and a few examples of each, one rejects file at a time."""
    files = list_files(join(clips_folder, "rejects"), ".parquet") if clips_folder else []
    counts: Counter = Counter()
    examples: list[dict[str, Any]] = []
    for url in files:
        columns = ["step", "reason", "source_uri", "start_s", "detail", "duplicate_of"]
        for row in read_table(url, columns=columns).to_pylist():
            counts[(row["step"], row["reason"])] += 1
            if counts[(row["step"], row["reason"])] <= EXAMPLES_PER_REASON:
                examples.append(row)
    note = "Curation rejected nothing." if clips_folder else "The curation folder is not known to this version."
    return {"counts": counts, "examples": sorted(examples, key=lambda r: (r["step"], r["reason"])), "note": note}
