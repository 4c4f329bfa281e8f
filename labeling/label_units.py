"""The labeling stage's work units: runs of rows of the clip table's parts.

A unit is a part and a row range; it is read by row groups (curation writes a few clips
per group), so a worker holds one unit's audio, never a whole part. Planning reads only
the clip_id and pcm_sha256 columns: enough to name each unit after its content, which is
how the embedding cache recognizes clips it has embedded before.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from curation.storage import exists, filesystem, join, list_files, read_table
from labeling.embedding_cache import content_key


class ClipTableError(ValueError):
    """A clip table that is missing, unfinished or lacks a column; the message names it."""


@dataclass(frozen=True)
class LabelUnit:
    id: str             # names the unit's output parts: <part stem>-<first row>
    part: str           # the clip part's URL
    first_row: int
    rows: int
    content: str        # hash of the unit's clip ids and audio digests


@dataclass(frozen=True)
class ClipTable:
    folder: str
    parts: list[str]
    digest: str         # hash of every part's name, clip ids and audio digests
    clips: int


def find_clip_table(root: str) -> str:
    """The clips/ folder of a curated output, or the folder itself if it holds the parts."""
    folder = join(root, "clips")
    if list_files(folder, ".parquet"):
        if not exists(join(root, "summary.json")):
            raise ClipTableError(f"{root}: curation has not finished here (no summary.json); run `soundry curate` again to complete it")
        return folder
    if list_files(root, ".parquet"):
        return root
    raise ClipTableError(f"{root}: no clip table (clips/part-*.parquet); point clips at the output of `soundry curate`")


def plan_units(root: str, clips_per_unit: int) -> tuple[ClipTable, list[LabelUnit]]:
    folder = find_clip_table(root)
    parts = [p for p in list_files(folder, ".parquet") if os.path.basename(p).startswith("part-")]
    digest = hashlib.sha256()
    units: list[LabelUnit] = []
    clips = 0
    for part in parts:
        try:
            keys = read_table(part, columns=["clip_id", "pcm_sha256"]).to_pydict()
        except (KeyError, pa.ArrowInvalid) as error:
            raise ClipTableError(f"{part}: not a clip table part ({error})") from None
        stem = os.path.basename(part).removesuffix(".parquet").removeprefix("part-")
        digest.update(stem.encode() + b"\n" + content_key(keys["clip_id"], keys["pcm_sha256"]).encode())
        for start in range(0, len(keys["clip_id"]), clips_per_unit):
            end = min(start + clips_per_unit, len(keys["clip_id"]))
            content = content_key(keys["clip_id"][start:end], keys["pcm_sha256"][start:end])
            units.append(LabelUnit(f"{stem}-{start:07d}", part, start, end - start, content))
        clips += len(keys["clip_id"])
    if not units:
        raise ClipTableError(f"{folder}: the clip table holds no clips")
    return ClipTable(folder, parts, digest.hexdigest()[:20], clips), units


def read_unit_rows(unit: LabelUnit, columns: list[str]) -> pa.Table:
    """The unit's rows, reading only the row groups that hold them."""
    fs, path = filesystem(unit.part)
    with fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        groups, offset, first = [], 0, None
        for index in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(index).num_rows
            if offset + size > unit.first_row and offset < unit.first_row + unit.rows:
                groups.append(index)
                first = offset if first is None else first
            offset += size
        table = parquet.read_row_groups(groups, columns=columns)
    return table.slice(unit.first_row - (first or 0), unit.rows)
