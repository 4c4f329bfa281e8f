"""A version trusts no name it did not make: a split hint or a manifest entry that would lead
outside the version is refused; a shard is done only when whole; a version is committed once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shards.config import ShardConfig
from shards.derive import derived_shards
from shards.loader.config import LoaderConfig
from shards.loader.loader import resolve_urls
from shards.manifest import MANIFEST, VersionError, read_manifest
from shards.plan import InputError, make_plan
from shards.publish import VersionExists, commit_version
from shards.versions import verify_version
from shards.writer import find_written_shard, write_shard


def config_for(folder: str, root: Path, **overrides) -> ShardConfig:
    values = {
        "clips": folder,
        "root": str(root),
        "version": "v1",
        "splits": {"fractions": {"train": 0.5, "valid": 0.5}},
        "shards": {"min_shards": 2},
        **overrides,
    }
    return ShardConfig.model_validate(values)


def test_a_split_hint_that_is_no_split_name_is_refused(tmp_path, shard_inputs):
    curated = shard_inputs.make_curated(tmp_path / "curated", sources=3, split_hints={1: "../../../escaped"})
    config = config_for(curated.folder, tmp_path / "pubroot" / "inner")
    with pytest.raises(InputError, match=r"split_hint '\.\./\.\./\.\./escaped'.*use_split_hints false"):
        shard_inputs.publish_inline(config)
    assert not [p for p in tmp_path.rglob("*escaped*")], "nothing may be written outside the version"


@pytest.fixture
def version_copy(tmp_path, labeled_version) -> Path:
    version = tmp_path / "v1"
    shutil.copytree(labeled_version[0], version)
    return version


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m["shards"][0].update(tar="../../outside.tar"),
        lambda m: m["shards"][0].update(sidecar="/etc/passwd"),
        lambda m: m["shards"][0].update(name="../x", tar="shards/../x.tar", sidecar="shards/../x.parquet"),
        lambda m: m["shards"][0].update(split="other"),
        lambda m: m["files"].update(stats="../../stats.json"),
    ],
    ids=["tar", "sidecar", "name", "split", "stats"],
)
def test_every_reader_refuses_a_manifest_naming_files_outside_the_version(version_copy, tmp_path, tamper):
    manifest = json.loads((version_copy / MANIFEST).read_text())
    tamper(manifest)
    (version_copy / MANIFEST).write_text(json.dumps(manifest))
    version = str(version_copy)
    for read in (
        read_manifest,  # versions show and diff, train's data checks
        verify_version,
        lambda v: derived_shards(v, str(tmp_path / "v1-latents")),  # encode
        lambda v: resolve_urls(v, LoaderConfig(split="train")),  # the training loader
    ):
        with pytest.raises(VersionError, match="altered"):
            read(version)
    assert not (tmp_path / "v1-latents").exists()


def test_a_shard_cut_short_is_written_again(tmp_path, shard_inputs):
    curated = shard_inputs.make_curated(tmp_path / "curated", sources=4)
    config = config_for(curated.folder, tmp_path / "versions")
    plan = make_plan(config)
    task = plan.tasks[0]
    first = write_shard(task, config)
    tar = tmp_path / "versions" / "v1" / "shards" / f"{task.name}.tar"
    whole = tar.read_bytes()
    assert find_written_shard(str(tar.parents[1]), task.name) is not None
    tar.write_bytes(whole[:-1024])  # what a copy cut short, or a store that lost the tail, leaves
    assert find_written_shard(str(tar.parents[1]), task.name) is None
    again = write_shard(task, config)
    assert not again.resumed and again.sha256 == first.sha256 and tar.read_bytes() == whole


def test_a_version_is_committed_once(tmp_path, shard_inputs):
    curated = shard_inputs.make_curated(tmp_path / "curated", sources=3)
    config = config_for(curated.folder, tmp_path / "versions")
    manifest = shard_inputs.publish_inline(config)
    version = str(tmp_path / "versions" / "v1")
    with pytest.raises(VersionExists, match="published by another job while this one ran"):
        commit_version(version, {**manifest, "description": "a second publish that reached its commit"})
    assert read_manifest(version) == manifest
