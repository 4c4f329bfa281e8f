"""Plan a version: which clips go in, which split each lands in, and which shard holds it.

The plan reads the clip table's metadata only (row-group reads of a few columns, never the
audio) and keeps one small row per clip: the global seeded shuffle needs to see every clip
id once. Shard writing, which moves the audio, streams in bounded memory on the runners.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
from typing import Any

import pyarrow.parquet as pq

from curation.clip import clip_parts
from curation.core.errors import UserError
from curation.core.storage import exists, filesystem, join, list_files, read_json, read_table
from labeling.labels.table import CLIP_EMBEDDINGS_DIR, LABELS_DIR
from labeling.labels.table import MANIFEST as LABEL_MANIFEST
from shards.config import SPLIT_NAME, ShardConfig
from shards.sample import check_key
from shards.split import SplitAssigner, read_lines, source_names

_METADATA = ["clip_id", "source_id", "source_uri", "license", "split_hint", "num_samples", "pcm_sha256"]


class InputError(UserError):
    """A label folder that is missing or unfinished, or inputs that do not fit together; the message names it."""


@dataclasses.dataclass(frozen=True)
class ClipRef:
    part: str  # URL of the clip table part holding the clip
    row_group: int
    row: int  # within the row group
    clip_id: str


@dataclasses.dataclass(frozen=True)
class ShardTask:
    split: str
    index: int
    clips: tuple[ClipRef, ...]

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:06d}"


@dataclasses.dataclass
class Plan:
    tasks: list[ShardTask]
    clips_in: int
    clips_hash: str  # of the whole input clip table: sorted (clip_id, pcm_sha256)
    labels_hash: str | None  # of the label folder's files
    excluded: dict[str, int]  # clips left out, by reason

    def lineage_inputs(self) -> dict[str, Any]:
        return {"clips_hash": self.clips_hash, "labels_hash": self.labels_hash}


@dataclasses.dataclass
class _Clip:
    ref: ClipRef
    source_id: str
    split: str
    est_bytes: float
    order: int


def check_label_folder(labels: str) -> dict[str, Any]:
    """The label run's manifest; its presence says the run finished."""
    url = join(labels, LABEL_MANIFEST)
    if not exists(url):
        raise InputError(
            f"{labels}: no {LABEL_MANIFEST}, so no finished label run; run (or finish) `soundry label` first"
        )
    if not list_files(join(labels, LABELS_DIR), ".parquet"):
        raise InputError(f"{labels}/{LABELS_DIR} holds no label table parts; run `soundry label` again")
    return read_json(url)


def labeled_clip_ids(labels: str) -> set[str]:
    """Clips with both a label row and a CLAP embedding."""
    labeled = _column_values(list_files(join(labels, LABELS_DIR), ".parquet"), "clip_id")
    embedded = _column_values(list_files(join(labels, CLIP_EMBEDDINGS_DIR), ".parquet"), "key")
    return labeled & embedded


def make_plan(config: ShardConfig) -> Plan:
    parts = clip_parts(config.clips)
    assigner = SplitAssigner(config.splits)
    excluded_sources = {line for url in config.exclude.sources for line in read_lines(url)}
    allowed = set(config.licenses) if config.licenses is not None else None
    labeled = None
    labels_hash = None
    if config.labels:
        check_label_folder(config.labels)
        labeled = labeled_clip_ids(config.labels)
        labels_hash = _files_hash(config.labels, [LABELS_DIR, CLIP_EMBEDDINGS_DIR], [LABEL_MANIFEST])
    excluded: collections.Counter[str] = collections.Counter()
    identity = []
    kept: list[_Clip] = []
    seen: set[str] = set()
    for part in parts:
        for rows, audio_bytes, group in _row_groups(part):
            total_samples = sum(rows["num_samples"]) or 1
            for row, clip_id in enumerate(rows["clip_id"]):
                if clip_id in seen:
                    raise InputError(
                        f"{part}: clip {clip_id} appears twice in the clip table; curate into a fresh folder"
                    )
                seen.add(clip_id)
                check_key(clip_id)
                identity.append((clip_id, rows["pcm_sha256"][row]))
                source_id, uri = rows["source_id"][row], rows["source_uri"][row]
                reason = _exclusion(source_id, uri, rows["license"][row], clip_id, excluded_sources, allowed, labeled)
                if reason:
                    excluded[reason] += 1
                    continue
                split = assigner.split(source_id, uri, rows["split_hint"][row])
                if not SPLIT_NAME.fullmatch(split):
                    # Only a hint can bring one (fractions and assignments are checked as they are read);
                    # it names files: "../x" would write outside the version.
                    raise InputError(
                        f"{part}: clip {clip_id} (from {uri}) carries split_hint {split!r}, which is not a split "
                        "name (lower case letters, digits and _, starting with a letter: it starts shard file "
                        "names); fix the hint in its sidecar or location and curate again, or publish with "
                        "--splits.use_split_hints false"
                    )
                kept.append(
                    _Clip(
                        ClipRef(part, group, row, clip_id),
                        source_id,
                        split,
                        audio_bytes * rows["num_samples"][row] / total_samples,
                        int.from_bytes(hashlib.sha256(f"{config.seed}:{clip_id}".encode()).digest()[:8], "big"),
                    )
                )
    if not kept:
        reasons = ", ".join(f"{n} by {reason}" for reason, n in sorted(excluded.items()))
        raise InputError(
            f"{config.clips}: none of its {len(identity)} clips is left to publish ({reasons}); "
            "loosen licenses or exclude"
        )
    identity.sort()
    clips_hash = hashlib.sha256("\n".join(f"{c}\t{p}" for c, p in identity).encode()).hexdigest()
    return Plan(_cut(kept, config), len(identity), clips_hash, labels_hash, dict(sorted(excluded.items())))


def _exclusion(
    source_id: str,
    uri: str,
    license: str | None,
    clip_id: str,
    excluded_sources: set[str],
    allowed: set[str] | None,
    labeled: set[str] | None,
) -> str | None:
    if excluded_sources and any(name in excluded_sources for name in source_names(source_id, uri)):
        return "excluded_source"
    if allowed is not None and (license or "unknown") not in allowed:
        return "license"
    if labeled is not None and clip_id not in labeled:
        return "unlabeled"
    return None


def _cut(clips: list[_Clip], config: ShardConfig) -> list[ShardTask]:
    """Each split in its seeded order, cut into shards of near-equal counts that meet the targets."""
    by_split: dict[str, list[_Clip]] = collections.defaultdict(list)
    for clip in clips:
        by_split[clip.split].append(clip)
    size = config.shards
    tasks = []
    for split in sorted(by_split):
        members = sorted(by_split[split], key=lambda c: (c.order, c.ref.clip_id))
        total_bytes = sum(c.est_bytes for c in members)
        count = max(
            math.ceil(total_bytes / size.max_bytes),
            math.ceil(len(members) / size.max_samples),
            min(size.min_shards, len(members)),
        )
        # Equal counts, not greedy filling: the last shard is not a runt, and nodes get even work.
        bounds = [round(i * len(members) / count) for i in range(count + 1)]
        for index in range(count):
            chunk = members[bounds[index] : bounds[index + 1]]
            tasks.append(ShardTask(split, index, tuple(c.ref for c in chunk)))
    return tasks


def _row_groups(part: str):
    """(metadata columns as lists, compressed bytes of the audio column, index) per row group."""
    fs, path = filesystem(part)
    with fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        audio_column = parquet.schema_arrow.get_field_index("audio_flac")
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=_METADATA)
            audio_bytes = parquet.metadata.row_group(group).column(audio_column).total_compressed_size
            yield table.to_pydict(), audio_bytes, group


def _column_values(parts: list[str], column: str) -> set[str]:
    return {value for part in parts for value in read_table(part, columns=[column]).column(column).to_pylist()}


def _files_hash(root: str, folders: list[str], files: list[str]) -> str:
    digest = hashlib.sha256()
    urls = [u for folder in folders for u in list_files(join(root, folder), ".parquet")] + [
        join(root, f) for f in files
    ]
    for url in urls:
        fs, path = filesystem(url)
        with fs.open(path, "rb") as f:
            relative = "/".join(url.split("/")[-2:])  # folder/file: the same on every filesystem
            digest.update(relative.encode() + b"\0" + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()
