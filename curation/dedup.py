"""Exact duplicates across the corpus: clips whose stored PCM is the same, and the decision which to keep."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.clip import Reject, clip_part_writer, rejects_to_table
from curation.core.storage import (
    atomic_local_file,
    exists,
    filesystem,
    is_local,
    join,
    read_table,
    write_table_atomic,
)

# The grouping is the one global step, an engine's group-by (orchestration): read_members is
# its read, decide_group its reduce. The decision is a pure function of each group of clips
# sharing a pcm_sha256, and it is recorded before any part is rewritten, so a crash midway
# resumes by re-applying the same decision.

# What the grouping step reads from every clip part.
KEY_COLUMNS = ["pcm_sha256", "clip_id", "source_uri"]

DUPLICATE_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("part", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string(), nullable=False),
        pa.field("duplicate_of_uri", pa.string(), nullable=False),
    ]
)

Member = tuple[str, str, str]  # (clip_id, source_uri, part)
# A part to rewrite and the (clip_id, source_uri) of the clips to drop from it.
PartDrop = tuple[str, list[tuple[str, str]]]
# Runs the rewrite of each part, all at once where it can (an engine's map_few); returns its results.
MapFew = Callable[[Callable[[PartDrop], dict[str, Any]], Sequence[PartDrop]], list[dict[str, Any]]]


def read_members(part: str) -> Iterator[tuple[str, Member]]:
    """Every clip of a part as (pcm_sha256, member), reading only the key columns; the member
    names its part by exactly the string given."""
    fs, path = filesystem(part)
    # A part's three key columns are a few KB: on local disk, reading them is cheaper than what
    # read_table sets up around it (a dataset scan, read-ahead, threads), 1.7 against 0.45 ms a
    # part of 75 short clips. From an object store, read-ahead joins a row group's key columns
    # into one request.
    with pq.ParquetFile(path, filesystem=fs, pre_buffer=not is_local(fs)) as parquet:
        keys = parquet.read(columns=KEY_COLUMNS, use_threads=False).to_pydict()
    for digest, clip_id, uri in zip(keys["pcm_sha256"], keys["clip_id"], keys["source_uri"], strict=True):
        yield digest, (clip_id, uri, part)


def decide_group(members: list[Member]) -> list[dict[str, str]]:
    """The decision rows (DUPLICATE_SCHEMA) of one pcm_sha256: none for a clip alone; else
    the member with the smallest (clip_id, source_uri) is kept and the rest are duplicates.

    The order is a property of the members alone (part breaks the last tie), so every
    runner and partitioning keeps the same one.
    """
    if len(members) < 2:
        return []
    ordered = sorted(members)
    keeper = ordered[0]
    return [
        {"clip_id": m[0], "source_uri": m[1], "part": m[2], "duplicate_of": keeper[0], "duplicate_of_uri": keeper[1]}
        for m in ordered[1:]
    ]


def decision_url(output: str) -> str:
    return join(output, "dedup.parquet")


def apply_duplicates(output: str, find: Callable[[], list[dict[str, str]]], map_few: MapFew | None = None) -> pa.Table:
    """Decide once (`find` runs the engine's grouping and returns the decision rows), record
    the decision, then drop the duplicates from their clip parts (each part's rewrite run by
    `map_few`, an engine's; default: one after another in this process) and list them as
    rejects.

    A rerun after a crash anywhere in here reads the recorded decision instead of
    deciding again (the parts may already be rewritten) and re-applies it: idempotent.
    """
    url = decision_url(output)
    if exists(url):
        decision = read_table(url)
    else:
        # The engines return the rows in their own order (a group-by's); sorted, the decision and
        # its rejects part are the same bytes from every engine and every run.
        rows = sorted(find(), key=lambda row: (row["part"], row["clip_id"], row["source_uri"]))
        decision = pa.Table.from_pylist(rows, schema=DUPLICATE_SCHEMA)
        write_table_atomic(url, decision)
    _drop_from_parts(decision, map_few or _one_by_one)
    rejects = [
        Reject(
            row["source_uri"],
            "dedup",
            "duplicate",
            f"same decoded PCM as clip {row['duplicate_of']} of {row['duplicate_of_uri']}",
            clip_id=row["clip_id"],
            duplicate_of=row["duplicate_of"],
        )
        for row in decision.to_pylist()
    ]
    write_table_atomic(join(output, "rejects", "part-dedup.parquet"), rejects_to_table(rejects))
    return decision


def _drop_from_parts(duplicates: pa.Table, map_few: MapFew) -> None:
    by_part: dict[str, list[tuple[str, str]]] = {}
    for row in duplicates.to_pylist():
        by_part.setdefault(row["part"], []).append((row["clip_id"], row["source_uri"]))
    # The parts are independent: the engine's workers rewrite them, each holding one row group.
    if by_part:
        map_few(_drop_from_part, sorted(by_part.items()))


def _one_by_one(fn: Callable[[PartDrop], dict[str, Any]], items: Sequence[PartDrop]) -> list[dict[str, Any]]:
    return [fn(item) for item in items]


def _drop_from_part(item: PartDrop) -> dict[str, Any]:
    """The part without the clips listed with it, rewritten a row group at a time as its unit
    wrote it: the row groups are what bounds the memory of a reader that takes a part a group
    at a time (the shard writer), and of this rewrite. A part already without them (a rerun
    after a crash) is left as it is. Its result: the part and how many clips left it."""
    part, dropped = item
    losers = set(dropped)
    fs, path = filesystem(part)
    with pq.ParquetFile(path, filesystem=fs) as parquet:
        keys = parquet.read(columns=["clip_id", "source_uri"])
        clips = zip(keys.column("clip_id").to_pylist(), keys.column("source_uri").to_pylist(), strict=True)
        keep = [clip not in losers for clip in clips]
        if all(keep):
            return {"part": part, "dropped": 0}
        with (
            atomic_local_file(part, suffix=".parquet") as tmp,
            clip_part_writer(tmp, parquet.schema_arrow, write_back=is_local(fs)) as writer,
        ):
            start = 0
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                kept = table.filter(pa.array(keep[start : start + table.num_rows], type=pa.bool_()))
                start += table.num_rows
                if kept.num_rows:
                    writer.write_table(kept)
    return {"part": part, "dropped": keep.count(False)}
