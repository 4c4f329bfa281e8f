"""Curate one work unit: every file through probe → decode → segment → measure → filter
→ encode, written as the unit's clip part, rejects part and stats.

This is the function every runner maps over units. It is idempotent: a unit whose clip
part exists is done and is not redone, which is what makes a killed job resumable on
any runner. The clip part is written last; it is the unit's commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from curation import clip as cliprow
from curation.config import CurationConfig, Location
from curation.core.storage import (
    atomic_local_files,
    exists,
    filesystem,
    is_local,
    join,
    json_bytes,
    read_json,
    write_table_file,
)
from curation.decode import DecodeError, choose_backend, decode
from curation.discover import PlannedFile, WorkUnit
from curation.encode import encode_flac, pcm_sha256, quantize_pcm16
from curation.filter import rejection
from curation.heap import retain_freed_memory
from curation.measure import measure
from curation.probe import NotAudio, SourceFacts, probe
from curation.segment import Piece, Segmenter, Windows

# Sidecar keys that override the location's attributes; "tags" overrides container tags;
# anything else is kept verbatim in metadata_json.
_ATTRIBUTE_KEYS = ("source_name", "license", "split_hint")


@dataclasses.dataclass
class UnitStats:
    unit: str
    files: int = 0
    bytes_in: int = 0
    seconds_in: float = 0.0
    clips: int = 0
    seconds_out: float = 0.0
    rejected_files: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected_clips: dict[str, int] = dataclasses.field(default_factory=dict)
    decoders: dict[str, int] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0  # of the worker process, at the end of the unit
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitStats:
        return cls(**data)


def run_unit(unit: WorkUnit, config: CurationConfig) -> UnitStats:
    clips_url = cliprow.clip_part_url(config.output, unit.id)
    rejects_url = join(config.output, "rejects", f"part-{unit.id}.parquet")
    stats_url = join(config.output, "stats", f"part-{unit.id}.json")
    if exists(clips_url):
        return dataclasses.replace(UnitStats.from_dict(read_json(stats_url)), resumed=True)
    retain_freed_memory()
    started = time.perf_counter()
    stats = UnitStats(unit.id)
    rejects: list[cliprow.Reject] = []
    # The clip part is committed last, once the rejects and stats it vouches for are durable.
    committed = atomic_local_files([rejects_url, stats_url, clips_url], [".parquet", ".json", ".parquet"])
    on_disk = is_local(filesystem(clips_url)[0])  # else the temporaries are uploaded, not synced
    with committed as (rejects_tmp, stats_tmp, clips_tmp):
        with cliprow.clip_part_writer(clips_tmp, write_back=on_disk) as writer:
            pending: list[dict[str, Any]] = []
            for file in unit.files:
                for item in _curate_file(file, config, stats):
                    if isinstance(item, cliprow.Reject):
                        rejects.append(item)
                        continue
                    pending.append(item)
                    if len(pending) >= config.units.rows_per_group:
                        writer.write_table(cliprow.rows_to_clip_table(pending))
                        pending = []
            if pending:
                writer.write_table(cliprow.rows_to_clip_table(pending))
        for reject in rejects:
            counts = stats.rejected_clips if reject.clip_id else stats.rejected_files
            counts[reject.reason] = counts.get(reject.reason, 0) + 1
        stats.wall_s = time.perf_counter() - started
        stats.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        write_table_file(cliprow.rejects_to_table(rejects), rejects_tmp)
        with open(stats_tmp, "wb") as f:
            f.write(json_bytes(stats.to_dict()))
        # leaving the block moves the rejects and stats into place, then the clip part: the commit
    return stats


def _curate_file(
    file: PlannedFile, config: CurationConfig, stats: UnitStats
) -> Iterator[dict[str, Any] | cliprow.Reject]:
    uri = file.uri
    stats.files += 1
    stats.bytes_in += file.size
    location = config.inputs[file.location]
    step = "discover"
    source_id = None
    try:
        if file.size == 0:
            yield cliprow.Reject(uri, "discover", "empty_file", "the file is 0 bytes long")
            return
        attributes, metadata, tag_overrides = _read_sidecar(file, location)
        with _local_copy(uri, location) as (path, source_id):
            step = "probe"
            facts = probe(path)
            if tag_overrides:
                facts = dataclasses.replace(facts, tags={**facts.tags, **tag_overrides})
            backend = choose_backend(facts, config.decode)
            stats.decoders[backend] = stats.decoders.get(backend, 0) + 1
            step = "decode"
            yield from _clips(path, source_id, facts, backend, file, attributes, metadata, config, stats)
    except NotAudio as error:
        yield cliprow.Reject(uri, "probe", "not_audio", str(error), source_id=source_id)
    except SidecarError as error:
        yield cliprow.Reject(uri, "discover", "bad_sidecar", str(error))
    except DecodeError as error:
        yield cliprow.Reject(uri, "decode", "decode_error", str(error), source_id=source_id)
    except Exception as error:  # one broken file must never stop a corpus-wide job
        yield cliprow.Reject(uri, step, "error", f"{type(error).__name__}: {error}", source_id=source_id)


def _clips(
    path: str,
    source_id: str,
    facts: SourceFacts,
    backend: str,
    file: PlannedFile,
    attributes: dict[str, Any],
    metadata: dict[str, Any],
    config: CurationConfig,
    stats: UnitStats,
) -> Iterator[dict[str, Any] | cliprow.Reject]:
    rate = config.audio.sample_rate
    seg = config.segment
    segmenter = Segmenter(Windows.from_seconds(seg.window_s, seg.hop, seg.min_clip_s, rate))
    shared = {
        "source_id": source_id,
        "source_uri": file.uri,
        "sample_rate": rate,
        "channels": config.audio.channels,
        **attributes,
        "metadata_json": json.dumps(metadata, ensure_ascii=False, sort_keys=True) if metadata else None,
        **facts.to_row(),
        "decoder": backend,
    }
    made = 0
    try:
        for block in decode(path, facts, backend, config.decode, config.audio):
            for piece in segmenter.feed(block):
                made += 1
                yield _clip(piece, shared, facts, config, stats)
    finally:
        stats.seconds_in += segmenter.total / rate
    for piece in segmenter.finish():
        if isinstance(piece, Piece):
            made += 1
            yield _clip(piece, shared, facts, config, stats)
        elif made:
            yield cliprow.Reject(
                file.uri,
                "segment",
                "too_short",
                f"tail of {piece.length / rate:.2f} s < segment.min_clip_s {seg.min_clip_s}",
                source_id=source_id,
                clip_id=cliprow.make_clip_id(source_id, piece.start),
                start_s=piece.start / rate,
                duration_s=piece.length / rate,
            )
    if not made:
        length = segmenter.total / rate
        reason = "no_samples" if segmenter.total == 0 else "too_short"
        yield cliprow.Reject(
            file.uri,
            "segment",
            reason,
            f"{length:.2f} s of audio decoded, shorter than segment.min_clip_s {seg.min_clip_s}",
            source_id=source_id,
            duration_s=length,
        )


def _clip(
    piece: Piece, shared: dict[str, Any], facts: SourceFacts, config: CurationConfig, stats: UnitStats
) -> dict[str, Any] | cliprow.Reject:
    rate = config.audio.sample_rate
    clip_id = cliprow.make_clip_id(shared["source_id"], piece.start)
    start_s = piece.start / rate
    duration_s = len(piece.pcm) / rate
    measures = measure(piece.pcm, rate)
    failed = rejection(measures, config.filter)
    if failed:
        reason, detail = failed
        return cliprow.Reject(
            shared["source_uri"],
            "filter" if reason != "non_finite" else "measure",
            reason,
            detail,
            source_id=shared["source_id"],
            clip_id=clip_id,
            start_s=start_s,
            duration_s=duration_s,
        )
    pcm16 = quantize_pcm16(piece.pcm)
    stats.clips += 1
    stats.seconds_out += duration_s
    return {
        **shared,
        "clip_id": clip_id,
        "start_s": start_s,
        "start_sample": piece.start,
        "duration_s": duration_s,
        "num_samples": len(piece.pcm),
        "seconds_start": cliprow.seconds_start(start_s),
        "seconds_total": cliprow.seconds_total(max(facts.duration_s, start_s + duration_s)),
        **measures.to_row(),
        "pcm_sha256": pcm_sha256(pcm16),
        "audio_flac": encode_flac(pcm16, rate, config.encode.flac_compression),
    }


class SidecarError(Exception):
    """A sidecar that is not a readable JSON object of the expected shape."""


def _read_sidecar(file: PlannedFile, location: Location) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The clip attributes, free metadata and tag overrides for one file."""
    attributes = {key: getattr(location, key) for key in _ATTRIBUTE_KEYS}
    if not file.sidecar:
        return attributes, {}, {}
    fs, path = filesystem(file.sidecar, location.storage_options)
    try:
        with fs.open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise SidecarError(f"sidecar {file.sidecar} is not readable JSON ({error}); fix or remove it") from error
    if not isinstance(data, dict):
        raise SidecarError(f"sidecar {file.sidecar} must hold a JSON object, not {type(data).__name__}")
    metadata = dict(data)
    for key in _ATTRIBUTE_KEYS:
        if key in metadata:
            attributes[key] = None if metadata[key] is None else str(metadata.pop(key))
    tags = metadata.pop("tags", None) or {}
    if not isinstance(tags, dict):
        raise SidecarError(f'sidecar {file.sidecar}: "tags" must be an object of tag names to values')
    return attributes, metadata, {str(k).lower(): str(v) for k, v in tags.items()}


@contextlib.contextmanager
def _local_copy(uri: str, location: Location) -> Iterator[tuple[str, str]]:
    """A local path for the file and the sha256 of its bytes (its source id).

    Remote files are downloaded once, hashed on the way; decoders need a seekable file.
    """
    fs, path = filesystem(uri, location.storage_options)
    if isinstance(fs, LocalFileSystem):
        with open(path, "rb") as f:
            yield path, hashlib.file_digest(f, "sha256").hexdigest()
        return
    digest = hashlib.sha256()
    suffix = os.path.splitext(path)[1][:16]
    with tempfile.NamedTemporaryFile(prefix="soundry-src-", suffix=suffix) as local:
        with fs.open(path, "rb") as remote:
            while chunk := remote.read(8 * 2**20):
                digest.update(chunk)
                local.write(chunk)
        local.flush()
        yield local.name, digest.hexdigest()
