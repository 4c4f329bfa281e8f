"""Published versions: list them, show one, diff two, verify one against its manifest.

Everything here reads manifests and sidecars only, except `verify`, which re-reads every
byte of every shard to recompute its checksum.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from curation.core.storage import exists, filesystem, join, read_table
from shards.manifest import MANIFEST, PENDING, VersionError, file_sha256, read_manifest


def list_versions(root: str) -> list[dict[str, Any]]:
    """Every folder under root: published ones with their totals, others as unpublished."""
    fs, path = filesystem(root)
    if not fs.isdir(path):
        raise VersionError(f"{root}: no such folder of dataset versions")
    listed = []
    for entry in sorted(fs.ls(path, detail=False)):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".") or not fs.isdir(entry):
            continue
        version = join(root, name)
        if exists(join(version, MANIFEST)):
            manifest = read_manifest(version)
            listed.append(
                {
                    "version": name,
                    "published": True,
                    "name": manifest["name"],
                    "created": manifest["created"],
                    **{k: manifest["totals"][k] for k in ("clips", "hours", "shards", "bytes")},
                    "splits": sorted(manifest["splits"]),
                    "labeled": manifest["lineage"]["labels"] is not None,
                }
            )
        else:
            listed.append({"version": name, "published": False, "pending": exists(join(version, PENDING))})
    return listed


@dataclasses.dataclass
class VersionDiff:
    a: str
    b: str
    added: list[str]
    removed: list[str]
    relabeled: list[str]
    audio_changed: list[str]
    moved: list[tuple[str, str, str]]  # key, split in a, split in b
    config: list[tuple[str, Any, Any]]  # dotted key, value in a, value in b
    lineage: list[tuple[str, Any, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def diff_versions(a: str, b: str) -> VersionDiff:
    manifest_a, manifest_b = read_manifest(a), read_manifest(b)
    clips_a, clips_b = _clip_facts(a, manifest_a), _clip_facts(b, manifest_b)
    both = sorted(clips_a.keys() & clips_b.keys())
    return VersionDiff(
        a,
        b,
        added=sorted(clips_b.keys() - clips_a.keys()),
        removed=sorted(clips_a.keys() - clips_b.keys()),
        relabeled=[k for k in both if clips_a[k]["label_hash"] != clips_b[k]["label_hash"]],
        audio_changed=[k for k in both if clips_a[k]["pcm_sha256"] != clips_b[k]["pcm_sha256"]],
        moved=[
            (k, clips_a[k]["split"], clips_b[k]["split"]) for k in both if clips_a[k]["split"] != clips_b[k]["split"]
        ],
        config=_changes(manifest_a["config"], manifest_b["config"]),
        lineage=_changes(_comparable_lineage(manifest_a), _comparable_lineage(manifest_b)),
    )


def _clip_facts(version: str, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    facts = {}
    for shard in manifest["shards"]:
        table = read_table(join(version, shard["sidecar"]), columns=["key", "split", "pcm_sha256", "label_hash"])
        for row in table.to_pylist():
            facts[row.pop("key")] = row
    return facts


def _comparable_lineage(manifest: dict[str, Any]) -> dict[str, Any]:
    """Lineage without where the inputs lay: the same tables from another folder are the same."""
    lineage = manifest["lineage"]
    return {
        "clips": {k: v for k, v in lineage["clips"].items() if k != "url"},
        "labels": {k: v for k, v in lineage["labels"].items() if k != "url"} if lineage["labels"] else None,
    }


def _changes(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [c for k in sorted(set(a) | set(b)) for c in _changes(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [(prefix.rstrip("."), a, b)]


@dataclasses.dataclass
class Problem:
    file: str
    problem: str  # missing | size | sha256
    detail: str


def verify_version(version: str, on_file=None) -> list[Problem]:
    """Recompute every shard's and sidecar's size and sha256; name each that is missing or corrupt."""
    manifest = read_manifest(version)
    problems = []
    for shard in manifest["shards"]:
        for file, size, digest in (
            (shard["tar"], shard["bytes"], shard["sha256"]),
            (shard["sidecar"], shard["sidecar_bytes"], shard["sidecar_sha256"]),
        ):
            url = join(version, file)
            try:
                found_digest, found_size = file_sha256(url)
            except FileNotFoundError:
                problems.append(Problem(file, "missing", "not found"))
            else:
                if found_size != size:
                    problems.append(Problem(file, "size", f"{found_size} bytes, manifest says {size}"))
                elif found_digest != digest:
                    problems.append(Problem(file, "sha256", f"{found_digest[:16]}…, manifest says {digest[:16]}…"))
            if on_file:
                on_file(file)
    return problems
