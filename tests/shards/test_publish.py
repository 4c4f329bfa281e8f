"""Publishing: clip table (+ labels) → shards, sidecars, manifest, card; round trip, splits by
source, atomic commit, resume after a crash, immutability, licenses and exclusions."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.clip import ClipTableError
from curation.core.storage import read_json
from shards.config import ShardConfig
from shards.manifest import VersionError, read_manifest
from shards.plan import InputError, make_plan
from shards.publish import PublishConflict, VersionExists, begin
from shards.split import SplitFileError
from shards.writer import write_shard


def tar_members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as archive:
        return [(m.name, archive.extractfile(m).read()) for m in archive]


def config_for(curated, tmp_path, version="v1", **overrides) -> ShardConfig:
    values = {
        "clips": curated.folder,
        "root": str(tmp_path / "versions"),
        "version": version,
        "splits": {"fractions": {"train": 0.5, "valid": 0.5}},
        "shards": {"min_shards": 3},
        **overrides,
    }
    return ShardConfig.model_validate(values)


def test_labeled_version_round_trips(labeled_version, curated):
    version, manifest, _ = labeled_version
    seen = {}
    for shard in manifest["shards"]:
        path = Path(version) / shard["tar"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == shard["bytes"]
        members = tar_members(path)
        keys = [name.split(".", 1)[0] for name, _ in members]
        assert len(members) == 3 * shard["count"]
        for name, payload in members:
            key, extension = name.split(".", 1)
            seen.setdefault(key, {})[extension] = payload
        sidecar = pd.read_parquet(Path(version) / shard["sidecar"])
        assert list(sidecar["key"]) == keys[::3] and set(sidecar["split"]) == {shard["split"]}
    assert set(seen) == set(curated.rows)
    for key, sample in seen.items():
        assert sample["flac"] == curated.flac[key], "audio must be the clip table's bytes, not re-encoded"
        record = json.loads(sample["json"])
        assert record["key"] == key and record["pcm_sha256"] == curated.rows[key]["pcm_sha256"]
        assert record["seconds_total"] == curated.rows[key]["seconds_total"]
        assert record["long_form"] and record["tag_chunks"] and record["text"] == record["long_form"][0]
        assert np.load(io.BytesIO(sample["clap.npy"])).shape == (8,)
    assert manifest["totals"]["clips"] == len(curated.rows)
    assert manifest["members"] == ["flac", "json", "clap.npy"]
    assert manifest["lineage"]["labels"]["clap"]["model_id"] == "test"
    assert manifest["lineage"]["labels"]["vocabularies"] == {"llm_long": "v1", "tags": "v2"}


def test_splits_are_by_source_and_shards_are_shuffled(labeled_version, curated):
    version, manifest, _ = labeled_version
    sidecars = pd.concat([pd.read_parquet(Path(version) / s["sidecar"]) for s in manifest["shards"]])
    assert (sidecars.groupby("source_id")["split"].nunique() == 1).all()
    assert set(sidecars["split"]) == {"train", "valid"}
    assert {s: manifest["splits"][s]["clips"] for s in manifest["splits"]} == sidecars["split"].value_counts().to_dict()
    # Clips of one source are consecutive in the clip table; after the seeded shuffle they are not.
    order = sidecars.sort_values(["shard", "index"])
    runs = (order["source_id"] != order["source_id"].shift()).sum()
    assert runs > len(order) / 2


def test_card_plots_and_stats(labeled_version):
    version, manifest, _ = labeled_version
    card = (Path(version) / "README.md").read_text()
    assert card.startswith("---\n") and "path: shards/train-*.tar" in card
    for plot in ("durations", "loudness", "sources_per_split", "top_labels", "caption_frequency", "bpm", "keys"):
        assert (Path(version) / "card" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"card/{plot}.png" in card
    stats = read_json(str(Path(version) / "stats.json"))
    assert stats["caption_frequency"][0]["plain_count"] >= stats["caption_frequency"][-1]["plain_count"]
    music = stats["music"]  # as tests/shards/conftest.py label_row measures it
    assert music["analysed"] == manifest["totals"]["clips"] and 0 < music["tempo_known"] <= music["analysed"]
    assert sum(music["bpm"]["counts"]) == music["tempo_known"] == music["key_known"] == sum(music["keys"].values())
    assert set(music["modes"]) == {"major", "minor"} and "## Musical facts" in card
    assert sum(c["clips"] for c in manifest["licenses"]["per_license"].values()) == manifest["totals"]["clips"]
    assert set(manifest["licenses"]["per_source"]) == {"collection-0", "collection-1"}


def test_same_inputs_give_identical_shards(curated, tmp_path, shard_inputs):
    publish_inline = shard_inputs.publish_inline
    first = publish_inline(config_for(curated, tmp_path, "a"))
    second = publish_inline(config_for(curated, tmp_path, "b"))
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    reseeded = publish_inline(config_for(curated, tmp_path, "c", seed=1))
    assert [s["sha256"] for s in reseeded["shards"]] != [s["sha256"] for s in first["shards"]]


def test_crash_mid_publish_leaves_no_version_and_a_rerun_completes_it(curated, tmp_path, monkeypatch, shard_inputs):
    publish_inline = shard_inputs.publish_inline
    config = config_for(curated, tmp_path)
    plan = make_plan(config)
    begin(config, plan)
    write_shard(plan.tasks[0], config)
    written = (Path(config.root) / "v1" / "shards" / f"{plan.tasks[0].name}.tar").stat().st_mtime_ns

    import shards.writer

    def crash(*args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(shards.writer, "add_member", crash)
    with pytest.raises(KeyboardInterrupt):
        write_shard(plan.tasks[1], config)
    monkeypatch.undo()
    version = Path(config.root) / "v1"
    assert not list(version.rglob("*.tmp*")), "a crashed shard left its temporary behind"
    assert not (version / "shards" / f"{plan.tasks[1].name}.tar").exists()
    with pytest.raises(VersionError, match="not a published version"):
        read_manifest(str(version))

    import shards.publish

    monkeypatch.setattr(shards.publish, "write_card", crash)
    with pytest.raises(KeyboardInterrupt):
        publish_inline(config)
    monkeypatch.undo()
    assert not (version / "manifest.json").exists()

    manifest = publish_inline(config)
    assert (version / "shards" / f"{plan.tasks[0].name}.tar").stat().st_mtime_ns == written, "a done shard was redone"
    assert manifest["totals"]["clips"] == len(curated.rows)
    assert not (version / "pending.json").exists()
    reference = publish_inline(config_for(curated, tmp_path, "reference"))
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in reference["shards"]]


def test_published_versions_are_immutable_and_claims_are_kept(curated, tmp_path, shard_inputs):
    publish_inline = shard_inputs.publish_inline
    config = config_for(curated, tmp_path)
    publish_inline(config)
    with pytest.raises(VersionExists, match="already published"):
        publish_inline(config)
    pending = config_for(curated, tmp_path, "v2")
    begin(pending, make_plan(pending))
    with pytest.raises(PublishConflict, match="differs in: config.seed"):
        other = config_for(curated, tmp_path, "v2", seed=7)
        begin(other, make_plan(other))


def test_license_rule_is_applied_and_recorded(tmp_path, shard_inputs):
    curated = shard_inputs.make_curated(
        tmp_path / "curated", sources=4, licenses=["CC0-1.0", "CC-BY-4.0", "proprietary", None]
    )
    manifest = shard_inputs.publish_inline(config_for(curated, tmp_path, licenses=["CC0-1.0", "CC-BY-4.0", "unknown"]))
    licenses = manifest["licenses"]
    assert licenses["allowed"] == ["CC0-1.0", "CC-BY-4.0", "unknown"]
    assert licenses["excluded_clips"] == {"license": 4}
    assert {name: c["clips"] for name, c in licenses["per_license"].items()} == {
        "CC-BY-4.0": 4,
        "CC0-1.0": 4,
        "unknown": 4,
    }
    assert manifest["totals"]["clips_in"] == 16 and manifest["totals"]["clips"] == 12


def test_exclusions_and_fixed_splits(curated, tmp_path, shard_inputs):
    labels = shard_inputs.make_labels(tmp_path / "labels", sorted(curated.rows), skip=2)
    sources = sorted({row["source_uri"] for row in curated.rows.values()})
    (tmp_path / "eval_sources.txt").write_text(f"# evaluation audio\n{sources[0].rsplit('/', 1)[-1]}\n")
    (tmp_path / "eval_captions.txt").write_text("Recording number 1.\n")
    (tmp_path / "splits.csv").write_text(f"source,split\n{sources[1]},test\n")
    manifest = shard_inputs.publish_inline(
        config_for(
            curated,
            tmp_path,
            labels=labels,
            exclude={
                "sources": [str(tmp_path / "eval_sources.txt")],
                "captions": [str(tmp_path / "eval_captions.txt")],
                "vocabularies": ["rater_long"],
            },
            splits={"fractions": {"train": 1.0}, "assignments": str(tmp_path / "splits.csv")},
        )
    )
    unlabeled = [c for c in sorted(curated.rows)[:2] if curated.rows[c]["source_uri"] != sources[0]]
    assert manifest["licenses"]["excluded_clips"] == {
        "excluded_source": 4,
        **({"unlabeled": len(unlabeled)} if unlabeled else {}),
    }
    version = Path(tmp_path / "versions" / "v1")
    sidecars = pd.concat([pd.read_parquet(version / s["sidecar"]) for s in manifest["shards"]])
    assert sources[0] not in set(sidecars["source_uri"])
    assert set(sidecars.loc[sidecars["source_uri"] == sources[1], "split"]) == {"test"}
    texts = {label["text"] for labels_of_clip in sidecars["labels"] for label in labels_of_clip}
    prompts = {p for candidates in sidecars["prompt_candidates"] for p in candidates}
    assert "Recording number 1." not in texts | prompts
    assert "a rater sentence" not in texts | prompts
    assert "Recording number 2." in texts


@pytest.mark.parametrize(
    "problem,match",
    [
        ("no_summary", "no summary.json"),
        ("no_label_manifest", "no manifest.json"),
        ("bad_assignments", "columns source,split"),
    ],
)
def test_bad_inputs_are_named(curated, tmp_path, problem, match, shard_inputs):
    overrides = {}
    if problem == "no_summary":
        broken = shard_inputs.make_curated(tmp_path / "unfinished", sources=1, clips_per_source=1)
        Path(broken.folder, "summary.json").unlink()
        overrides["clips"] = broken.folder
    elif problem == "no_label_manifest":
        (tmp_path / "labels").mkdir()
        overrides["labels"] = str(tmp_path / "labels")
    else:
        (tmp_path / "splits.csv").write_text("file,where\na,b\n")
        overrides["splits"] = {"assignments": str(tmp_path / "splits.csv")}
    with pytest.raises((ClipTableError, InputError, SplitFileError), match=match):
        make_plan(config_for(curated, tmp_path, **overrides))


def test_shard_targets_bound_size_and_count(curated, tmp_path):
    plan = make_plan(
        config_for(curated, tmp_path, splits={"fractions": {"train": 1.0}}, shards={"max_samples": 5, "min_shards": 1})
    )
    assert sorted(len(t.clips) for t in plan.tasks) == [4, 5, 5, 5, 5]
    assert [t.name for t in plan.tasks] == [f"train-{i:06d}" for i in range(5)]
    tiny = make_plan(
        config_for(
            curated, tmp_path, splits={"fractions": {"train": 1.0}}, shards={"max_bytes": 2**16, "min_shards": 1}
        )
    )
    assert len(tiny.tasks) > 5
