"""Exact duplicates across the corpus: clips whose stored PCM is the same, and the decision which to keep."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.clip import Reject, clip_part_writer, rejects_to_table
from curation.core.storage import atomic_local_file, exists, filesystem, join, read_table, write_table_atomic

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


def read_members(part: str) -> Iterator[tuple[str, Member]]:
    """Every clip of a part as (pcm_sha256, member), reading only the key columns; the member
    names its part by exactly the string given."""
    keys = read_table(part, columns=KEY_COLUMNS).to_pydict()
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


def apply_duplicates(output: str, find: Callable[[], list[dict[str, str]]]) -> pa.Table:
    """Decide once (`find` runs the engine's grouping and returns the decision rows), record
    the decision, then drop the duplicates from their clip parts and list them as rejects.

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
    _drop_from_parts(decision)
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


def _drop_from_parts(duplicates: pa.Table) -> None:
    by_part: dict[str, set[tuple[str, str]]] = {}
    for row in duplicates.to_pylist():
        by_part.setdefault(row["part"], set()).add((row["clip_id"], row["source_uri"]))
    for part, losers in sorted(by_part.items()):
        fs, path = filesystem(part)
        parquet = pq.ParquetFile(path, filesystem=fs)
        table = parquet.read()
        keys = zip(table.column("clip_id").to_pylist(), table.column("source_uri").to_pylist(), strict=True)
        keep = pa.array([key not in losers for key in keys], type=pa.bool_())
        if not pc.all(keep).as_py():
            # Rewritten as the unit wrote it: its row groups are what bounds the memory of a
            # reader that takes a part a row group at a time (the shard writer).
            rows_per_group = parquet.metadata.row_group(0).num_rows
            with atomic_local_file(part, suffix=".parquet") as tmp, clip_part_writer(tmp, table.schema) as writer:
                writer.write_table(table.filter(keep), row_group_size=rows_per_group)
