"""`versions list | show | diff | verify` on published versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from shards.config import ShardConfig
from shards.manifest import VersionError, read_manifest
from shards.plan import make_plan
from shards.publish import begin
from shards.versions import diff_versions, list_versions, verify_version


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, shard_inputs):
    """v1: 4 sources labeled; v2: 5 sources (one added), 3 clips relabeled, another seed."""
    base = tmp_path_factory.mktemp("versions")
    small = shard_inputs.make_curated(base / "small", sources=4)
    large = shard_inputs.make_curated(base / "large", sources=5)
    ids = sorted(small.rows)
    relabel = {clip_id: 100 + i for i, clip_id in enumerate(ids[:3])}
    common = {"root": str(base / "root"), "splits": {"fractions": {"train": 1.0}}, "shards": {"min_shards": 2}}
    shard_inputs.publish_inline(
        ShardConfig(clips=small.folder, labels=shard_inputs.make_labels(base / "l1", ids), version="v1", **common)
    )
    shard_inputs.publish_inline(
        ShardConfig(
            clips=large.folder,
            version="v2",
            seed=3,
            labels=shard_inputs.make_labels(base / "l2", sorted(large.rows), relabel=relabel),
            **common,
        )
    )
    return base / "root", small, large, sorted(relabel)


def test_diff_reports_added_removed_relabeled_and_configs(two_versions):
    root, small, large, relabeled = two_versions
    difference = diff_versions(str(root / "v1"), str(root / "v2"))
    assert difference.added == sorted(set(large.rows) - set(small.rows)) and len(difference.added) == 4
    assert difference.removed == []
    assert difference.relabeled == relabeled
    assert difference.audio_changed == [] and difference.moved == []
    changed = {key for key, _, _ in difference.config}
    assert {"seed", "version", "clips", "labels"} <= changed
    assert "clips.hash" in {key for key, _, _ in difference.lineage}
    backwards = diff_versions(str(root / "v2"), str(root / "v1"))
    assert backwards.removed == difference.added and backwards.added == []


def test_list_shows_published_and_unfinished(two_versions, shard_inputs):
    root, small, _, _ = two_versions
    unfinished = ShardConfig(clips=small.folder, root=str(root), version="v3")
    begin(unfinished, make_plan(unfinished))
    listed = {v["version"]: v for v in list_versions(str(root))}
    assert listed["v1"]["published"] and listed["v1"]["clips"] == 16 and listed["v1"]["labeled"]
    assert listed["v2"]["clips"] == 20
    assert listed["v3"] == {"version": "v3", "published": False, "pending": True}
    with pytest.raises(VersionError, match="not a published version"):
        read_manifest(str(root / "v3"))
    with pytest.raises(VersionError, match="no such folder"):
        list_versions(str(root / "nowhere"))


def test_verify_names_corrupt_and_missing_files(tmp_path, shard_inputs):
    curated = shard_inputs.make_curated(tmp_path / "curated", sources=3)
    manifest = shard_inputs.publish_inline(
        ShardConfig(
            clips=curated.folder,
            root=str(tmp_path / "root"),
            version="v1",
            splits={"fractions": {"train": 1.0}},
            shards={"min_shards": 3},
        )
    )
    version = tmp_path / "root" / "v1"
    assert verify_version(str(version)) == []
    first, second, third = manifest["shards"]
    data = bytearray((version / first["tar"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version / first["tar"]).write_bytes(bytes(data))
    (version / second["sidecar"]).unlink()
    with open(version / third["tar"], "ab") as f:
        f.write(b"\0" * 512)
    problems = {(p.file, p.problem) for p in verify_version(str(version))}
    assert problems == {(first["tar"], "sha256"), (second["sidecar"], "missing"), (third["tar"], "size")}
    assert Path(version / "manifest.json").exists()


def test_what_is_not_a_version_is_named(two_versions, tmp_path):
    root, small, _, _ = two_versions
    with pytest.raises(VersionError, match=r"is a folder of versions \(v1, v2\).*name one, e.g. .*v2"):
        read_manifest(str(root))
    with pytest.raises(VersionError, match="manifest.json is a file; name the version's folder"):
        read_manifest(str(root / "v1" / "manifest.json"))
    with pytest.raises(VersionError, match=r"not a published version \(no manifest.json\)"):
        read_manifest(small.folder)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text((root / "v1" / "manifest.json").read_text()[:300])
    with pytest.raises(VersionError, match="manifest.json is damaged"):
        read_manifest(str(damaged))
    (damaged / "manifest.json").write_text("[1, 2]")
    with pytest.raises(VersionError, match="not a soundry dataset manifest"):
        read_manifest(str(damaged))
