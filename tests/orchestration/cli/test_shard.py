"""`soundry shard`, `soundry publish` and `soundry versions` end to end: the demo corpus
curated for real, published in parallel, read back by the loader; user errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from orchestration.cli.main import main
from orchestration.configs.jobs import CurateJob, ShardJob
from orchestration.jobs.curate import curate
from orchestration.jobs.shard import publish_version
from shards.loader.config import LoaderConfig
from shards.loader.loader import make_loader


@pytest.fixture(scope="module")
def curated_demo(demo_corpus, tmp_path_factory) -> Path:
    folder, _ = demo_corpus
    output = tmp_path_factory.mktemp("shard-cli") / "curated"
    job = CurateJob.model_validate(
        {
            "inputs": [{"path": str(folder), "source_name": "soundry-demo", "license": "CC0-1.0"}],
            "output": str(output),
            "segment": {"window_s": 5.0},
            "runner": {"workers": 1},
        }
    )
    curate(job, Console(file=open("/dev/null", "w")))
    return output


def publish_args(curated: Path, root: Path, version: str = "v1", *extra: str) -> list[str]:
    return [
        str(curated),
        "--root",
        str(root),
        "--version",
        version,
        "--splits.fractions",
        "{train: 0.7, valid: 0.3}",
        "--shards.min_shards",
        "4",
        *extra,
    ]


def test_shard_then_publish_then_read(curated_demo, tmp_path, capsys):
    root = tmp_path / "versions"
    assert main(["shard", *publish_args(curated_demo, root), "--runner.workers", "2"]) == 0
    assert not (root / "v1" / "manifest.json").exists()
    capsys.readouterr()
    assert main(["versions", "list", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"version": "v1", "published": False, "pending": True}]
    assert main(["publish", *publish_args(curated_demo, root)]) == 0
    err = capsys.readouterr().err
    assert "published" in err and "resumed" in err
    manifest = json.loads((root / "v1" / "manifest.json").read_text())
    assert manifest["totals"]["clips"] == manifest["totals"]["clips_in"] > 10
    assert manifest["licenses"]["per_license"]["CC0-1.0"]["clips"] == manifest["totals"]["clips"]
    assert manifest["lineage"]["clips"]["curation_config"]["segment"]["window_s"] == 5.0
    for command in (["versions", "show", str(root / "v1")], ["versions", "verify", str(root / "v1")]):
        assert main(command) == 0
    assert "matches the manifest" in capsys.readouterr().err

    loader = make_loader(str(root / "v1"), LoaderConfig(batch_size=4, num_workers=2, sample_size=44100 * 6), seed=0)
    batch = next(iter(loader))
    assert batch["audio"].shape == (4, 2, 44100 * 6)
    assert batch["padding_mask"][:, : 44100 * 5 - 1].all() and not batch["padding_mask"][:, 44100 * 5 + 1 :].any()
    assert all(batch["prompt"]) and len(batch["key"]) == 4


def test_publish_version_is_the_function_demo_calls(curated_demo, tmp_path):
    job = ShardJob.model_validate(
        {"clips": str(curated_demo), "root": str(tmp_path / "versions"), "version": "demo", "runner": {"workers": 1}}
    )
    summary = publish_version(job, Console(file=open("/dev/null", "w")))
    assert summary["published"] and summary["clips"] > 10 and summary["shards"] >= 1
    assert (tmp_path / "versions" / "demo" / "README.md").exists()


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["publish", "/nonexistent/curated", "--root", "{root}", "--version", "v1"], 2, "no summary.json"),
        (
            ["publish", "{curated}", "--root", "{root}", "--version", "v1", "--splits.fractions", "{{train: 0.5}}"],
            2,
            "add up to 0.5",
        ),
        (["publish", "{curated}", "--root", "{root}", "--version", "v1", "--licenses", "[MIT]"], 2, "by license"),
        (["versions", "show", "{root}/nothing"], 2, "no such dataset version"),
        (["publish", "{curated}", "--root", "{curated}/summary.json", "--version", "v1"], 2, "summary.json is a file"),
    ],
)
def test_user_errors_are_one_line(curated_demo, tmp_path, capsys, argv, code, message):
    root = tmp_path / "versions"
    argv = [a.format(root=root, curated=curated_demo) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_publishing_twice_is_refused_and_verify_fails_on_damage(curated_demo, tmp_path, capsys):
    root = tmp_path / "versions"
    assert main(["publish", *publish_args(curated_demo, root), "--runner.workers", "1"]) == 0
    assert main(["publish", *publish_args(curated_demo, root), "--runner.workers", "1"]) == 2
    assert "already published" in capsys.readouterr().err
    shard = sorted((root / "v1" / "shards").glob("*.tar"))[0]
    shard.write_bytes(shard.read_bytes()[:-1024])
    assert main(["versions", "verify", str(root / "v1")]) == 1
    assert shard.name in capsys.readouterr().err


def test_diff_on_the_command_line(curated_demo, tmp_path, capsys):
    root = tmp_path / "versions"
    for version, seed in (("v1", "0"), ("v2", "1")):
        assert (
            main(["publish", *publish_args(curated_demo, root, version), "--seed", seed, "--runner.workers", "1"]) == 0
        )
    capsys.readouterr()
    assert main(["versions", "diff", str(root / "v1"), str(root / "v2"), "--json"]) == 0
    difference = json.loads(capsys.readouterr().out)
    assert difference["added"] == difference["removed"] == difference["relabeled"] == []
    assert ["seed", 0, 1] in difference["config"]


def test_a_typo_in_a_config_file_is_named(curated_demo, tmp_path, capsys):
    (tmp_path / "publish.yaml").write_text(
        f"clips: {curated_demo}\nroot: {tmp_path}\nversion: v1\nshards: {{max_sampels: 3}}\n"
    )
    assert main(["publish", "-c", str(tmp_path / "publish.yaml")]) == 2
    assert "did you mean 'max_samples'" in capsys.readouterr().err


# Ray's start alone takes longer than the rest of this file; the map is the runners' own,
# tested in test_runners.py, and Ray runs it the same way (checked by hand, see the README).
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["beam"])
def test_every_engine_writes_the_same_shards(curated_demo, tmp_path, engine):
    shas = {}
    for name in ("local", engine):
        job = ShardJob.model_validate(
            {
                "clips": str(curated_demo),
                "root": str(tmp_path),
                "version": name,
                "shards": {"min_shards": 4},
                "runner": {"name": name, "workers": 2},
            }
        )
        publish_version(job, Console(file=open("/dev/null", "w")))
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        shas[name] = [(s["name"], s["sha256"]) for s in manifest["shards"]]
    assert shas[engine] == shas["local"] and len(shas["local"]) >= 4
