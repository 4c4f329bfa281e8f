"""The labeling stage's work units: runs of up to clips_per_unit rows of the clip table.

A unit is one or more row ranges of the table's parts, taken in order (curation may write
many small parts; a unit fills up across them, so model batches stay full). It is read by
row groups (curation writes a few clips per group), so a worker holds one unit's audio,
never a whole part. Planning reads only the clip_id and pcm_sha256 columns: enough to name
each unit after its content, which is how the embedding cache recognizes clips it has
embedded before, and how a resumed run recognizes finished units: a unit's id ends with the
hash of the clips it covers, so a run resumed with another clips_per_unit finds none of the
other size's parts done (the label job removes those) and counts no clip twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from curation.clip import ClipTableError, clip_parts, clips_folder, curated_output
from curation.core.storage import filesystem, read_table
from labeling.clap.embedding_cache import content_key


@dataclass(frozen=True)
class Segment:
    part: str  # a clip part's URL
    first_row: int
    rows: int


@dataclass(frozen=True)
class LabelUnit:
    id: str  # names the unit's output parts: <first part's stem>-<first row>-<content, 8 hex>
    segments: tuple[Segment, ...]
    rows: int
    content: str  # hash of the unit's clip ids and audio digests


@dataclass(frozen=True)
class ClipTable:
    folder: str
    parts: list[str]
    digest: str  # hash of every part's name, clip ids and audio digests
    clips: int


def plan_units(root: str, clips_per_unit: int) -> tuple[ClipTable, list[LabelUnit]]:
    """`root`: a curate output or its clips/ folder, holding a finished clip table."""
    parts = clip_parts(root)
    folder = clips_folder(curated_output(root))
    digest = hashlib.sha256()
    units: list[LabelUnit] = []
    pending: list[tuple[Segment, list[str], list[str]]] = []  # the unit being filled
    clips = 0
    for part in parts:
        try:
            keys = read_table(part, columns=["clip_id", "pcm_sha256"]).to_pydict()
        except (KeyError, pa.ArrowInvalid) as error:
            raise ClipTableError(f"{part}: not a clip table part ({error})") from None
        digest.update(
            os.path.basename(part).encode() + b"\n" + content_key(keys["clip_id"], keys["pcm_sha256"]).encode()
        )
        start = 0
        while start < len(keys["clip_id"]):
            take = min(clips_per_unit - sum(s.rows for s, _, _ in pending), len(keys["clip_id"]) - start)
            end = start + take
            pending.append((Segment(part, start, take), keys["clip_id"][start:end], keys["pcm_sha256"][start:end]))
            start = end
            if sum(s.rows for s, _, _ in pending) == clips_per_unit:
                units.append(_unit(pending))
                pending = []
        clips += len(keys["clip_id"])
    if pending:
        units.append(_unit(pending))
    if not units:
        raise ClipTableError(f"{folder}: the clip table holds no clips")
    return ClipTable(folder, parts, digest.hexdigest()[:20], clips), units


def _unit(pending: list[tuple[Segment, list[str], list[str]]]) -> LabelUnit:
    first = pending[0][0]
    stem = os.path.basename(first.part).removesuffix(".parquet").removeprefix("part-")
    clip_ids = [c for _, ids, _ in pending for c in ids]
    digests = [d for _, _, ds in pending for d in ds]
    content = content_key(clip_ids, digests)
    return LabelUnit(
        f"{stem}-{first.first_row:07d}-{content[:8]}", tuple(s for s, _, _ in pending), len(clip_ids), content
    )


def read_unit_rows(unit: LabelUnit, columns: list[str]) -> pa.Table:
    """The unit's rows, reading only the row groups that hold them."""
    return pa.concat_tables([_read_segment(segment, columns) for segment in unit.segments])


def _read_segment(segment: Segment, columns: list[str]) -> pa.Table:
    fs, path = filesystem(segment.part)
    with fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        groups, offset, first = [], 0, None
        for index in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(index).num_rows
            if offset + size > segment.first_row and offset < segment.first_row + segment.rows:
                groups.append(index)
                first = offset if first is None else first
            offset += size
        table = parquet.read_row_groups(groups, columns=columns)
    return table.slice(segment.first_row - (first or 0), segment.rows)
