"""A dataset version's manifest: written last, its presence is the version's commit.

`manifest.json` names the version, its lineage (input hashes, vocabulary versions, CLAP model
and checkpoint hash, configs), every shard with its split, count, bytes and sha256, and the
totals. Readers open a version through `read_manifest`, which refuses a folder without one:
a version being published, or whose publish was interrupted, is not a version yet.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from importlib import metadata as package_metadata
from typing import Any

from curation.core.errors import UserError
from curation.core.storage import exists, filesystem, join, read_json
from shards.config import SPLIT_NAME, ShardConfig
from shards.plan import Plan
from shards.writer import SHARDS_DIR, ShardResult

MANIFEST = "manifest.json"
PENDING = "pending.json"  # a publish under way: its config and input hashes
FORMAT = "soundry-dataset-version/1"
SHARD_NAME = re.compile(rf"({SPLIT_NAME.pattern})-[0-9]{{6}}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")  # no folder, no "..", not hidden


class VersionError(UserError):
    """A version that is not there, not published, or not a soundry version; the message says which."""


def read_manifest(version: str) -> dict[str, Any]:
    url = join(version, MANIFEST)
    fs, path = filesystem(version)
    if not exists(url):
        if fs.isfile(path):
            raise VersionError(f"{version} is a file; name the version's folder (the one that holds {MANIFEST})")
        if not fs.isdir(path):
            raise VersionError(f"{version}: no such dataset version")
        if exists(join(version, PENDING)):
            raise VersionError(
                f"{version} has no {MANIFEST}: it is not a published version (a publish is under way "
                "or was interrupted; run the same `soundry publish` again to complete it)"
            )
        inside = sorted(p.rstrip("/").split("/")[-2] for p in fs.glob(f"{path.rstrip('/')}/*/{MANIFEST}"))
        if inside:
            raise VersionError(
                f"{version} is a folder of versions ({', '.join(inside)}), not a published version; "
                f"name one, e.g. {join(version, inside[-1])}"
            )
        raise VersionError(
            f"{version} is not a published version (no {MANIFEST}); name a folder `soundry publish` wrote, ROOT/VERSION"
        )
    try:
        manifest = read_json(url)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VersionError(
            f"{url} is damaged (not valid JSON: {error}); copy the version again from where it was published"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise VersionError(f"{url} is not a soundry dataset manifest (format {found!r}, expected {FORMAT})")
    check_file_names(url, manifest)
    return manifest


def check_file_names(url: str, manifest: dict[str, Any]) -> None:
    """Every file a manifest names lies inside its version, under the one name the writer gives
    it: shards/{split}-{n:06d}.tar and .parquet, plain names for stats and card. Readers join these
    names to the version's URL, so a name like "../x" would read (or, deriving, write) elsewhere."""
    altered = "the manifest was altered or is not soundry's: do not use this version, copy it again from its source"
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise VersionError(f"{url}: no list of shards; {altered}")
    for index, shard in enumerate(shards):
        name = shard.get("name") if isinstance(shard, dict) else None
        match = SHARD_NAME.fullmatch(name) if isinstance(name, str) else None
        expected = (
            {"split": match.group(1), "tar": f"{SHARDS_DIR}/{name}.tar", "sidecar": f"{SHARDS_DIR}/{name}.parquet"}
            if match
            else {}
        )
        if not match or any(shard.get(key) != value for key, value in expected.items()):
            found = shard.get("tar") if isinstance(shard, dict) else shard
            raise VersionError(
                f"{url}: shards[{index}] names {found!r}, not {SHARDS_DIR}/{{split}}-{{n:06d}}.tar of its split "
                f"inside the version; {altered}"
            )
    for split in manifest.get("splits") or {}:
        if not SPLIT_NAME.fullmatch(str(split)):
            raise VersionError(f"{url}: split {split!r} is not a split name; {altered}")
    for key, name in (manifest.get("files") or {}).items():
        if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
            raise VersionError(f"{url}: files.{key} names {name!r}, not a file of the version's folder; {altered}")


def shard_urls(version: str, manifest: dict[str, Any], splits: list[str] | None = None) -> list[str]:
    """Full URLs of the version's tars, in manifest order, of the named splits (all by default)."""
    known = sorted(manifest["splits"])
    unknown = [s for s in splits or [] if s not in known]
    if unknown:
        raise VersionError(f"{version} has no split {', '.join(unknown)} (it has: {', '.join(known)})")
    return [join(version, s["tar"]) for s in manifest["shards"] if splits is None or s["split"] in splits]


def file_sha256(url: str) -> tuple[str, int]:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        return digest, f.tell()


def build_manifest(
    config: ShardConfig,
    plan: Plan,
    results: list[ShardResult],
    stats: dict[str, Any],
    lineage: dict[str, Any],
    version: str,
) -> dict[str, Any]:
    shards = []
    for result in sorted(results, key=lambda r: r.name):
        sidecar = f"{SHARDS_DIR}/{result.name}.parquet"
        sidecar_sha256, sidecar_bytes = file_sha256(join(version, sidecar))
        shards.append(
            {
                "name": result.name,
                "split": result.split,
                "tar": f"{SHARDS_DIR}/{result.name}.tar",
                "count": result.count,
                "bytes": result.bytes,
                "sha256": result.sha256,
                "sidecar": sidecar,
                "sidecar_bytes": sidecar_bytes,
                "sidecar_sha256": sidecar_sha256,
            }
        )
    return {
        "format": FORMAT,
        "name": config.name,
        "version": config.version,
        "description": config.description,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "soundry": package_version(),
        "lineage": lineage,
        "config": config.model_dump(mode="json"),
        "audio": stats["audio"],
        "members": stats["members"],
        "splits": stats["splits"],
        "licenses": {
            "allowed": config.licenses,
            "excluded_clips": plan.excluded,
            "per_license": stats["per_license"],
            "per_source": stats["per_source"],
        },
        "totals": {
            "clips": sum(s["count"] for s in shards),
            "hours": sum(split["hours"] for split in stats["splits"].values()),
            "shards": len(shards),
            "bytes": sum(s["bytes"] for s in shards),
            "clips_in": plan.clips_in,
            "clips_excluded": sum(plan.excluded.values()),
        },
        "shards": shards,
        "files": {"stats": "stats.json", "card": "README.md"},
    }


def lineage(config: ShardConfig, plan: Plan, label_manifest: dict[str, Any] | None) -> dict[str, Any]:
    curation_config = join(config.clips, "config.json")
    clips = {
        "url": config.clips,
        "hash": plan.clips_hash,
        "clips": plan.clips_in,
        "curation_config": read_json(curation_config) if exists(curation_config) else None,
    }
    labels = None
    if config.labels and label_manifest is not None:
        labels = {
            "url": config.labels,
            "hash": plan.labels_hash,
            "label_run": label_manifest.get("label_run"),
            "clap": label_manifest.get("clap"),
            "vocabularies": label_manifest.get("vocabularies"),
            "config": label_manifest.get("config"),
        }
    return {"clips": clips, "labels": labels}


def package_version() -> str:
    try:
        return package_metadata.version("soundry")
    except package_metadata.PackageNotFoundError:
        return "unknown"
