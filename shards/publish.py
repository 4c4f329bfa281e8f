"""Publishing a version: claim the folder, (shards are written by the runners), commit.

`begin` refuses a published version and records what this publish is (config and input
hashes) in `pending.json`, so that a rerun completes the same publish and a different one is
refused instead of mixing two. `finish` writes stats, card and, last, the manifest: until
that rename the version does not exist for any reader.
"""

from __future__ import annotations

import contextlib
from typing import Any

from curation.core.errors import UserError
from curation.core.storage import (
    exists,
    filesystem,
    join,
    json_bytes,
    read_json,
    write_bytes_exclusive,
    write_json_atomic,
)
from curation.core.strict_model import identity
from shards.card import write_card
from shards.config import ShardConfig
from shards.explorer.write import write_explorer
from shards.manifest import MANIFEST, PENDING, build_manifest, lineage
from shards.plan import Plan, check_label_folder
from shards.stats import compute_stats
from shards.writer import ShardResult, version_url

STATS = "stats.json"


class VersionExists(UserError):
    """Publishing onto a version that is already published."""


class PublishConflict(UserError):
    """An unfinished publish of other inputs or another configuration holds the version folder."""


def begin(config: ShardConfig, plan: Plan) -> None:
    claim_version(version_url(config), {"config": identity(config), "inputs": plan.lineage_inputs()})


def refuse_published(version: str) -> None:
    if exists(join(version, MANIFEST)):
        raise VersionExists(
            f"version {version} is already published and versions are immutable; publish under a new --version"
        )


def claim_version(version: str, claim: dict[str, Any]) -> None:
    """Refuse a published version; record `claim` (what this publish is) in pending.json, or
    check that the unfinished publish found there is the same one.

    The caller holds the version folder's lease (curation/core/lease.py): no other job writes
    there, and the caller clears what a dead one left half-written."""
    refuse_published(version)
    pending = join(version, PENDING)
    if exists(pending):
        found = read_json(pending)
        if found != claim:
            changed = sorted(_differences(found, claim))
            raise PublishConflict(
                f"{version} holds an unfinished publish of other inputs or settings "
                f"(differs in: {', '.join(changed)}); "
                "rerun that publish to complete it, or delete the folder, or choose another --version"
            )
    else:
        write_json_atomic(pending, claim)


def commit_version(version: str, manifest: dict[str, Any]) -> None:
    """The manifest, last and put-if-absent: from its creation on the version exists for every
    reader, and of two publishes that reach this point only the first commits."""
    try:
        write_bytes_exclusive(join(version, MANIFEST), json_bytes(manifest))
    except FileExistsError:
        raise VersionExists(
            f"version {version} was published by another job while this one ran; versions are immutable: "
            "publish under a new --version"
        ) from None
    # After the commit the claim is history; a crash before this line leaves a harmless file.
    fs, path = filesystem(join(version, PENDING))
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path)


def finish(config: ShardConfig, plan: Plan, results: list[ShardResult]) -> dict[str, Any]:
    """Stats, card and manifest (last) for shards that are all written; returns the manifest."""
    version = version_url(config)
    expected = {task.name for task in plan.tasks}
    missing = expected - {r.name for r in results}
    if missing:
        raise RuntimeError(f"{version}: shards {', '.join(sorted(missing))} were not written; run the publish again")
    label_manifest = check_label_folder(config.labels) if config.labels else None
    stats = compute_stats(version, sorted(results, key=lambda r: r.name), config.labels)
    write_json_atomic(join(version, STATS), stats)
    manifest = build_manifest(config, plan, results, stats, lineage(config, plan, label_manifest), version)
    card = write_card(version, manifest, stats)
    plots = [name for name in card if name.endswith(".png")]
    write_explorer(version, manifest, stats, plots, config.labels, config.clips, seed=config.seed)
    commit_version(version, manifest)
    return manifest


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]
