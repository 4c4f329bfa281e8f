"""stable-audio-tools 0.0.19's own loader reads soundry's versions: its `create_dataloader_from_config`
(`wds` type, local path, worker processes), as shipped, in a venv of its own (built once under build/
from tests/shards/stable_audio_tools/requirements.lock), with the dataset config and metadata module
copied from the README; and its pre-encoded mode on `soundry versions export-sat`'s layout."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent / "stable_audio_tools"
REPO = Path(__file__).parents[2]
sys.path.insert(0, str(HERE))
from sat_venv import stable_audio_tools_python  # noqa: E402


def readme_block(language: str, first_line: str) -> str:
    """A code block of the README's stable-audio-tools section, as a user copies it."""
    section = (REPO / "README.md").read_text().split("**stable-audio-tools**", 1)[1]
    for block in re.findall(rf"```{language}\n(.*?)```", section, re.S):
        if block.lstrip().startswith(first_line):
            return block
    raise AssertionError(f"no {language} block starting {first_line!r} in the README's stable-audio-tools section")


def run_stable_audio_tools(dataset_config: dict, loader: dict, batches: int) -> list[dict]:
    python = stable_audio_tools_python(REPO)
    request = {"dataset_config": dataset_config, "loader": loader, "batches": batches}
    done = subprocess.run(
        [str(python), str(HERE / "read_version.py"), json.dumps(request)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_folder(version: str, manifest: dict, folder: Path) -> Path:
    """The README's `mkdir -p v1-train && ln -s .../train-*.tar v1-train/`."""
    folder.mkdir()
    for shard in manifest["shards"]:
        if shard["split"] == "train":
            (folder / Path(shard["tar"]).name).symlink_to(Path(version, shard["tar"]).resolve())
    return folder


@pytest.mark.slow
def test_its_wds_loader_reads_a_published_version(labeled_version, curated, tmp_path):
    version, manifest, _ = labeled_version
    module = tmp_path / "soundry_timing.py"
    module.write_text(readme_block("python", "# soundry_timing.py"))
    config = json.loads(readme_block("json", "{"))
    config["datasets"][0].update(path=str(train_folder(version, manifest, tmp_path / "v1-train")) + "/")
    config["datasets"][0].update(custom_metadata_module=str(module))
    loader = {"batch_size": 2, "sample_size": 4000, "sample_rate": 8000, "audio_channels": 2, "num_workers": 1}
    batches = run_stable_audio_tools(config, loader, batches=3)
    assert len(batches) == 3
    train = {key for key in curated.rows if key in _train_keys(version, manifest)}
    for batch in batches:
        assert batch["shape"] == [2, 2, 4000] and batch["dtype"] == "torch.float32"
        assert batch["finite"] and batch["rms"] > 0.05
        for example in batch["examples"]:
            row = curated.rows[example["key"]]
            assert example["key"] in train
            assert isinstance(example["prompt"], str) and example["prompt"]
            # Source timing restored: the crop (under half a second) starts in the clip's first second.
            assert example["seconds_start"] == math.floor(row["start_s"])
            assert example["seconds_total"] == math.ceil(row["source_duration_s"])
            assert example["padding_mask"] == [1, 4000]


def _train_keys(version: str, manifest: dict) -> set[str]:
    import pyarrow.parquet as pq

    return {
        key
        for shard in manifest["shards"]
        if shard["split"] == "train"
        for key in pq.read_table(Path(version, shard["sidecar"]), columns=["key"])["key"].to_pylist()
    }


def latent_frames(key: str) -> int:
    return 3 + int(key[:2], 16) % 4  # latents of 3 to 6 frames: the export pads them to one length


@pytest.fixture(scope="module")
def latent_version(labeled_version, tmp_path_factory) -> str:
    """A version derived from the labeled one whose samples add latent.npy (C=4, seeded by key), as
    `soundry encode` writes it."""
    from shards.derive import claim_derived, derived_shards, finish_derived, write_derived_shard
    from shards.sample import npy_bytes

    def add_latents(samples):
        for sample in samples:
            rng = np.random.default_rng(int(sample["__key__"][:8], 16))
            latent = rng.standard_normal((4, latent_frames(sample["__key__"]))).astype(np.float16)
            yield sample, [("latent.npy", npy_bytes(latent))]

    source = labeled_version[0]
    target = str(tmp_path_factory.mktemp("latents") / "v1-latents")
    claim_derived(target, source, {"vae": "seeded noise"})
    results = [write_derived_shard(shard, add_latents) for shard in derived_shards(source, target)]
    finish_derived(
        source, target, results, name="latents", description="", added=["latent.npy"], derivation={}, config={}
    )
    return target


@pytest.mark.slow
def test_its_pre_encoded_mode_reads_the_export(latent_version, curated, tmp_path):
    from shards.export.stable_audio_tools import export_pre_encoded

    done = export_pre_encoded(latent_version, str(tmp_path / "sat"), split="train")
    assert done["frames"] == max(latent_frames(k) for k in _train_keys(latent_version, _manifest(latent_version)))
    assert export_pre_encoded(latent_version, str(tmp_path / "sat"), split="train")["written"] == 0  # resumes
    config = {
        "dataset_type": "wds",
        "datasets": [{"id": "soundry-v1-latents", "path": str(tmp_path / "sat") + "/"}],
        "pre_encoded": True,
        "latent_crop_length": 3,
        "random_crop": True,
        "resampled_shards": False,  # one pass: a sample its reader skips shows as missing batches, not a hang
    }
    loader = {"batch_size": 2, "sample_size": 3 * 2048, "sample_rate": 8000, "audio_channels": 2, "num_workers": 1}
    batches = run_stable_audio_tools(config, loader, batches=3)
    assert len(batches) == 3
    for batch in batches:
        assert batch["shape"] == [2, 4, 3] and batch["dtype"] == "torch.float32" and batch["finite"]
        for example in batch["examples"]:
            row = curated.rows[example["key"]]
            assert isinstance(example["prompt"], str) and example["prompt"]
            assert example["seconds_start"] == math.floor(row["start_s"])
            assert example["seconds_total"] == math.ceil(row["source_duration_s"])
            assert example["padding_mask"] == [1, 3]


def test_export_needs_latents_and_a_split(labeled_version, latent_version, tmp_path):
    from shards.export.stable_audio_tools import ExportError, export_pre_encoded

    with pytest.raises(ExportError, match="carries no latent.npy"):
        export_pre_encoded(labeled_version[0], str(tmp_path / "a"))
    with pytest.raises(ExportError, match="no 'test' shards"):
        export_pre_encoded(latent_version, str(tmp_path / "b"), split="test")

    from orchestration.cli.main import main

    # The command: a user's mistake is one line and exit status 2; the export itself, exit 0.
    assert main(["versions", "export-sat", labeled_version[0], str(tmp_path / "c")]) == 2
    assert main(["versions", "export-sat", latent_version, str(tmp_path / "d"), "--frames", "4"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "d").iterdir()) == [".tar"] * len(
        [s for s in _manifest(latent_version)["shards"] if s["split"] == "train"]
    )


def _manifest(version: str) -> dict:
    return json.loads(Path(version, "manifest.json").read_text())
