"""List the input locations and split the files into work units.

Only listing happens here (cheap, one process): hashing, probing and decoding happen in
the workers. The plan is written once per output folder and reused on resume, so the
units, and therefore what counts as done, never change under a rerun.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from curation.config import Location, Partitioning
from curation.core.errors import UserError
from curation.core.storage import SchemeUnavailable, filesystem

PLAN_SCHEMA = pa.schema(
    [
        pa.field("unit", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("location", pa.int32(), nullable=False),
        pa.field("sidecar", pa.string()),
    ]
)


class LocationError(UserError):
    """A configured input location that cannot be read."""


@dataclasses.dataclass(frozen=True)
class PlannedFile:
    uri: str
    size: int
    location: int  # index into the config's inputs
    sidecar: str | None = None


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    id: str
    files: tuple[PlannedFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def discover(inputs: Sequence[Location], follow_sidecars: bool = True, exclude: str | None = None) -> list[PlannedFile]:
    """Every file under every location, sorted by URI; sidecars paired with their audio."""
    found: dict[str, PlannedFile] = {}
    for index, location in enumerate(inputs):
        for uri, size in _list_location(location, index):
            if exclude and uri.startswith(exclude.rstrip("/") + "/"):
                continue
            found.setdefault(uri, PlannedFile(uri, size, index))
    if not follow_sidecars:
        return [found[uri] for uri in sorted(found)]
    sidecars = {_stem(uri): uri for uri in found if uri.endswith(".json")}
    audio_stems = {_stem(uri) for uri in found if not uri.endswith(".json")}
    files = []
    for uri in sorted(found):
        if uri.endswith(".json"):
            if _stem(uri) in audio_stems:
                continue  # a sidecar: read by the worker that takes its audio file
            files.append(found[uri])  # a lone .json is probed like anything else
        else:
            files.append(dataclasses.replace(found[uri], sidecar=sidecars.get(_stem(uri))))
    return files


def plan_units(files: Sequence[PlannedFile], partitioning: Partitioning) -> list[WorkUnit]:
    """Consecutive files grouped into units of about equal bytes, within the limits.

    Small corpora still get `min_units` units, so every worker has something to do.
    """
    if not files:
        return []
    total = sum(f.size for f in files)
    count = max(
        math.ceil(len(files) / partitioning.max_files),
        math.ceil(total / partitioning.max_bytes),
        min(partitioning.min_units, len(files)),
    )
    target = total / count
    units: list[list[PlannedFile]] = [[]]
    filled = 0  # bytes in the current unit
    for file in files:
        if units[-1] and (
            len(units[-1]) >= partitioning.max_files
            or filled + file.size > partitioning.max_bytes
            or filled + file.size / 2 > target  # cut where the unit is closest to its share
        ):
            units.append([])
            filled = 0
        units[-1].append(file)
        filled += file.size
    width = max(6, len(str(len(units))))
    return [WorkUnit(f"{i:0{width}d}", tuple(group)) for i, group in enumerate(units)]


# Roughly what a byte of each kind of file costs to curate, relative to uncompressed PCM: the work
# follows the seconds of audio, and a compressed file holds several times more of them per byte.
# Measured per MB on the demo corpus (CPU s): WAV 0.019, FLAC 0.051, MP3 0.16, AAC 0.17, Vorbis
# 0.27, Opus 0.34; higher bitrates give lossy files fewer seconds per byte, hence one weight for all.
_PCM = (".wav", ".wave", ".aif", ".aiff", ".aifc", ".w64", ".rf64", ".au", ".snd", ".caf")
_LOSSLESS = (".flac", ".wv", ".ape", ".tta", ".alac")
_LOSSY = (".mp3", ".mp2", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka")
_COST_PER_BYTE = {**dict.fromkeys(_PCM, 1), **dict.fromkeys(_LOSSLESS, 3), **dict.fromkeys(_LOSSY, 12)}
_UNKNOWN_COST_PER_BYTE = 3


def estimated_cost(unit: WorkUnit) -> int:
    """The unit's curation cost in PCM-byte equivalents, from its files' sizes and extensions."""
    return sum(
        f.size * _COST_PER_BYTE.get(posixpath.splitext(f.uri)[1].lower(), _UNKNOWN_COST_PER_BYTE) for f in unit.files
    )


def heaviest_first(units: Sequence[WorkUnit]) -> list[WorkUnit]:
    """The units in the order to hand them to workers: the largest estimated cost first, so that
    the last to finish are small ones and no worker idles while another ends a long unit (on
    the demo corpus, in plan order, 2 workers finished 10% after the ideal; heaviest first, 1%).
    Only the order changes: each unit writes its own parts, so the clip table does not."""
    return sorted(units, key=lambda unit: (-estimated_cost(unit), unit.id))


def plan_to_table(units: Sequence[WorkUnit]) -> pa.Table:
    rows = [
        {"unit": u.id, "uri": f.uri, "size": f.size, "location": f.location, "sidecar": f.sidecar}
        for u in units
        for f in u.files
    ]
    return pa.Table.from_pylist(rows, schema=PLAN_SCHEMA)


def plan_from_table(table: pa.Table) -> list[WorkUnit]:
    grouped: dict[str, list[PlannedFile]] = {}
    for row in table.to_pylist():
        grouped.setdefault(row["unit"], []).append(
            PlannedFile(row["uri"], row["size"], row["location"], row["sidecar"])
        )
    return [WorkUnit(unit, tuple(files)) for unit, files in sorted(grouped.items())]


def _list_location(location: Location, index: int) -> list[tuple[str, int]]:
    where = f"inputs[{index}].path = {location.path!r}"
    try:
        fs, path = filesystem(location.path, location.storage_options)
    except SchemeUnavailable as error:
        raise LocationError(f"{where}: {error.reason}") from None
    except (ImportError, ValueError) as error:  # a filesystem that refuses its storage options
        raise LocationError(f"{where}: {error}") from error
    try:
        if any(ch in path for ch in "*?["):
            listing: dict[str, Any] = fs.glob(path, detail=True)
            entries = {p: info for p, info in listing.items() if info.get("type") == "file"}
        elif fs.isdir(path):
            entries = fs.find(path, detail=True)
        elif fs.isfile(path):
            entries = {path: fs.info(path)}
        else:
            raise LocationError(f"{where}: no such file or folder; fix the path or remove the entry")
    except (OSError, PermissionError) as error:
        raise LocationError(f"{where}: cannot be listed ({error})") from error
    if not entries:
        raise LocationError(f"{where}: no files there; fix the path or glob, or remove the entry")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    local = protocol in ("file", "local")
    return [(p if local else fs.unstrip_protocol(p), int(info.get("size") or 0)) for p, info in entries.items()]


def _stem(uri: str) -> str:
    directory, name = posixpath.split(uri)
    base, dot, _ = name.rpartition(".")
    return posixpath.join(directory, base if dot else name)
