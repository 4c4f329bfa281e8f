"""A version derived from a published one by adding members to every sample (pre-encoded
latents): the same samples in the same shards and splits, the source's members byte for
byte, new members after them; its own tars, checksums, stats, card and manifest, with the
source's lineage and a record of the derivation.

A shard is a unit of work: `write_derived_shard` streams the source tar through a function
that gives each sample its new members and commits the new shard as the writer does
(sidecar first, tar last, by rename), so a killed derivation resumes at the first shard not
written and never writes one twice. `claim_version` and `commit_version` (shards/publish.py)
make the version appear whole or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from curation.core.errors import UserError
from curation.core.storage import atomic_local_file, join, read_json, read_table, write_json_atomic
from shards.card import write_card
from shards.loader.tars import BrokenShard, Sample, read_tar_samples
from shards.manifest import MANIFEST, file_sha256, package_version, read_manifest
from shards.publish import STATS, claim_version, commit_version
from shards.writer import ShardResult, add_member, find_written_shard, sidecar_url, tar_url, write_sidecar

# A function from a shard's samples (in order) to each sample with its new members, as
# (name suffix, bytes) pairs: ("latent.npy", ...) becomes "{key}.latent.npy".
AddMembers = Callable[[Iterator[Sample]], Iterator[tuple[Sample, list[tuple[str, bytes]]]]]


class DerivationError(UserError):
    """A source that cannot be derived from (a member already there, a shard that does not match its manifest)."""


@dataclasses.dataclass(frozen=True)
class DerivedShard:
    source: str  # the published version read
    target: str  # the version written
    name: str
    split: str
    count: int


def derived_shards(source: str, target: str) -> list[DerivedShard]:
    """One unit per shard of the source version, in manifest order."""
    manifest = read_manifest(source)
    return [DerivedShard(source, target, s["name"], s["split"], s["count"]) for s in manifest["shards"]]


def write_derived_shard(shard: DerivedShard, add: AddMembers) -> ShardResult:
    started = time.perf_counter()
    done = find_written_shard(shard.target, shard.name)
    if done is not None:
        return done
    keys = []
    with atomic_local_file(tar_url(shard.target, shard.name), suffix=".tar") as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
            try:
                for sample, extra in add(read_tar_samples(tar_url(shard.source, shard.name))):
                    key = sample["__key__"]
                    taken = [name for name, _ in extra if name in sample]
                    if taken:
                        raise DerivationError(f"{shard.source}: sample {key} already has {', '.join(taken)}")
                    for name, data in [*((n, v) for n, v in sample.items() if not n.startswith("__")), *extra]:
                        add_member(archive, f"{key}.{name}", data)
                    keys.append(key)
            except BrokenShard as broken:
                raise DerivationError(f"{broken}; run `soundry versions verify {shard.source}`") from None
        table = read_table(sidecar_url(shard.source, shard.name))
        if table["key"].to_pylist() != keys:
            raise DerivationError(
                f"{tar_url(shard.source, shard.name)}: its samples differ from its sidecar's "
                f"({len(keys)} read, {table.num_rows} listed); run `soundry versions verify {shard.source}`"
            )
        result = write_sidecar(sidecar_url(shard.target, shard.name), table, tmp, shard.name, shard.split)
    result.wall_s = time.perf_counter() - started
    return result


def finish_derived(
    source: str,
    target: str,
    results: list[ShardResult],
    *,
    name: str,
    description: str,
    added: list[str],
    derivation: dict[str, Any],
    config: dict[str, Any],
) -> dict[str, Any]:
    """Stats, card and manifest (last) of a derived version whose shards are all written."""
    manifest = read_manifest(source)
    by_name = {r.name: r for r in results}
    missing = [s["name"] for s in manifest["shards"] if s["name"] not in by_name]
    if missing:
        raise RuntimeError(f"{target}: shards {', '.join(missing)} were not written; run the same command again")
    shards = []
    for entry in manifest["shards"]:
        result = by_name[entry["name"]]
        sidecar_sha256, sidecar_bytes = file_sha256(join(target, entry["sidecar"]))
        shards.append(
            {
                **entry,
                "bytes": result.bytes,
                "sha256": result.sha256,
                "sidecar_bytes": sidecar_bytes,
                "sidecar_sha256": sidecar_sha256,
            }
        )
    members = [*manifest["members"], *added]
    splits = {
        split: {**facts, "bytes": sum(s["bytes"] for s in shards if s["split"] == split)}
        for split, facts in manifest["splits"].items()
    }
    stats = {**read_json(join(source, manifest["files"]["stats"])), "members": members}
    for split, facts in splits.items():
        stats["splits"][split] = {**stats["splits"][split], "bytes": facts["bytes"]}
    write_json_atomic(join(target, STATS), stats)
    derived = {
        **manifest,
        "name": name,
        "version": target.rstrip("/").rsplit("/", 1)[-1],
        "description": description,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "soundry": package_version(),
        "lineage": {
            **manifest["lineage"],
            **derivation,
            "derived_from": {"version": source, "manifest_sha256": file_sha256(join(source, MANIFEST))[0]},
        },
        "config": config,
        "members": members,
        "splits": splits,
        "shards": shards,
        "totals": {**manifest["totals"], "bytes": sum(s["bytes"] for s in shards)},
        "files": {"stats": STATS, "card": manifest["files"]["card"]},
    }
    write_card(target, derived, stats)
    commit_version(target, derived)
    return derived


def claim_derived(target: str, source: str, config: dict[str, Any]) -> None:
    """Refuse a published target; tie an unfinished derivation to its source and settings."""
    claim_version(
        target,
        {"config": config, "inputs": {"source": source, "manifest_sha256": file_sha256(join(source, MANIFEST))[0]}},
    )
