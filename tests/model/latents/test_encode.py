"""`soundry encode`: a published version through a frozen VAE into a new version with latents."""

from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest
import soundfile
import torch

from model.checkpoint import save_checkpoint
from model.config import ModelConfig, preset
from model.latents.encode import EncodeError
from model.training.config import DataConfig
from model.training.data import TrainDataError, loader_config
from model.vae import AudioVAE
from model.weights import StateDictError, read_tensors
from orchestration.cli.main import main
from orchestration.configs.jobs import EncodeJob
from orchestration.jobs.encode import encode_version
from shards.derive import DerivationError
from shards.loader.loader import make_loader
from shards.loader.tars import read_tar_samples
from shards.manifest import read_manifest
from shards.publish import PublishConflict, VersionExists
from shards.versions import verify_version


def vae_checkpoint(folder, config: ModelConfig | None = None) -> str:
    config = config or preset("tiny")
    torch.manual_seed(0)
    return str(save_checkpoint(folder, AudioVAE(config.vae, config.audio_channels), config))


@pytest.fixture(scope="module")
def vae(tmp_path_factory) -> str:
    return vae_checkpoint(tmp_path_factory.mktemp("vae") / "vae")


def encode(source: str, vae: str, root, version: str, **options) -> dict:
    job = {
        "source": source,
        "vae": vae,
        "root": str(root),
        "version": version,
        "threads": 1,
        "batch_size": 2,
        "runner": {"name": "local", "workers": 1},
        **options,
    }
    return encode_version(EncodeJob.model_validate(job))


def samples(version: str) -> dict[str, dict]:
    manifest = read_manifest(version)
    return {s["__key__"]: s for shard in manifest["shards"] for s in read_tar_samples(f"{version}/{shard['tar']}")}


def test_the_new_version_keeps_every_sample_and_adds_the_vae_latents(tmp_path, audio_version, vae):
    summary = encode(audio_version, vae, tmp_path, "latents", latents="mean")
    target = str(tmp_path / "latents")
    assert summary["version"] == target and summary["shards_resumed"] == 0
    manifest, source = read_manifest(target), read_manifest(audio_version)
    assert manifest["members"] == [*source["members"], "latent.npy"]
    assert manifest["totals"]["clips"] == source["totals"]["clips"] == summary["clips"]
    assert [s["name"] for s in manifest["shards"]] == [s["name"] for s in source["shards"]]
    lineage = manifest["lineage"]["latents"]
    assert lineage["vae"] == vae and lineage["latent_dim"] == 64 and lineage["mode"] == "mean"
    assert manifest["lineage"]["clips"] == source["lineage"]["clips"]
    assert manifest["lineage"]["derived_from"]["version"] == audio_version
    assert verify_version(target) == []
    assert "latent.npy" in (tmp_path / "latents" / "README.md").read_text()

    encoded, original = samples(target), samples(audio_version)
    assert encoded.keys() == original.keys()
    model = AudioVAE(preset("tiny").vae, 2)
    model.load_state_dict(read_tensors(f"{vae}/model.safetensors"))
    for key, sample in encoded.items():
        assert sample["flac"] == original[key]["flac"] and sample["json"] == original[key]["json"]
        audio, _ = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32", always_2d=True)
        latent = np.load(io.BytesIO(sample["latent.npy"]))
        with torch.no_grad():
            expected = model.encode(torch.from_numpy(audio.T[None]), sample=False)[0].numpy()
        assert latent.shape == (64, -(-audio.shape[0] // 2048)) and latent.dtype == np.float32
        np.testing.assert_allclose(latent, expected, atol=1e-5)


def test_posterior_draws_are_seeded_by_clip_so_reruns_are_byte_identical(tmp_path, audio_version, vae):
    encode(audio_version, vae, tmp_path, "a")
    encode(audio_version, vae, tmp_path, "b", model_workers=2)  # how work is spread is not what is computed
    first, second = read_manifest(str(tmp_path / "a")), read_manifest(str(tmp_path / "b"))
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    mean = samples(str(encode(audio_version, vae, tmp_path, "mean", latents="mean")["version"]))
    drawn = samples(str(tmp_path / "a"))
    key = next(iter(drawn))
    assert not np.array_equal(
        np.load(io.BytesIO(drawn[key]["latent.npy"])), np.load(io.BytesIO(mean[key]["latent.npy"]))
    )
    with pytest.raises(VersionExists):
        encode(audio_version, vae, tmp_path, "a")


def test_a_run_that_fails_midway_resumes_to_the_uninterrupted_result(tmp_path, audio_version, vae):
    source = tmp_path / "source"
    shutil.copytree(audio_version, source)
    names = [s["tar"] for s in read_manifest(str(source))["shards"]]
    broken = source / names[2]
    whole = broken.read_bytes()
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DerivationError, match="versions verify"):
        encode(str(source), vae, tmp_path, "resumed")
    written = sorted(p.name for p in (tmp_path / "resumed" / "shards").glob("*.tar"))
    assert written == [n.rsplit("/", 1)[-1] for n in names[:2]]
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    broken.write_bytes(whole)
    summary = encode(str(source), vae, tmp_path, "resumed")
    assert summary["shards_resumed"] == 2
    encode(str(source), vae, tmp_path, "straight")
    resumed, straight = read_manifest(str(tmp_path / "resumed")), read_manifest(str(tmp_path / "straight"))
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in straight["shards"]]
    shutil.rmtree(tmp_path / "straight" / "shards")
    (tmp_path / "straight" / "manifest.json").unlink()
    (tmp_path / "straight" / "pending.json").write_text('{"config": {}, "inputs": {}}')
    with pytest.raises(PublishConflict, match="unfinished publish"):  # the same folder, other settings: refused
        encode(str(source), vae, tmp_path, "straight")


def test_the_trainer_reads_the_latents(tmp_path, audio_version, vae):
    from model.training.config import TrainConfig
    from model.training.train import train

    version = encode(audio_version, vae, tmp_path, "latents")["version"]
    model = preset("tiny").model_copy(update={"sample_size": 32 * 2048})
    config = loader_config(DataConfig(version=version, batch_size=2, workers=0), model)
    assert config.latents
    batch = next(iter(make_loader(version, config, seed=0)))
    assert batch["latents"].shape == (2, 64, 32) and "audio" not in batch
    summary = train(
        TrainConfig.model_validate(
            {
                "output": str(tmp_path / "run"),
                "data": {"version": version, "batch_size": 2, "workers": 0},
                "vae": vae,
                "sample_size": 32 * 2048,
                "max_steps": 2,
                "log_every": 1,
                "checkpoint_every": 2,
                "demo": {"seconds": 0.1, "steps": 2, "cfg_scales": [3.0]},
            }
        )
    )
    assert summary["step"] == 2 and np.isfinite(summary["loss"])
    with pytest.raises(TrainDataError, match="architecture"):
        loader_config(DataConfig(version=version), preset("small"))


def test_bad_input_is_named(tmp_path, audio_version, vae):
    other_rate = preset("tiny").model_copy(update={"sample_rate": 16000})
    wrong = vae_checkpoint(tmp_path / "vae16k", other_rate)
    with pytest.raises(EncodeError, match="16000 Hz"):
        encode(audio_version, wrong, tmp_path, "x")
    with pytest.raises(EncodeError, match="no such checkpoint"):
        encode(audio_version, str(tmp_path / "missing"), tmp_path, "x")
    damaged = tmp_path / "damaged"
    shutil.copytree(vae, damaged)
    weights = (damaged / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(StateDictError, match="model.safetensors: cannot be read"):
        encode(audio_version, str(damaged), tmp_path, "y")
    assert not (tmp_path / "y").exists()  # refused before the version was claimed
    latents = encode(audio_version, vae, tmp_path, "latents")["version"]
    with pytest.raises(EncodeError, match="already carries latents"):
        encode(latents, vae, tmp_path, "again")


def test_cli(tmp_path, audio_version, vae, capsys):
    assert (
        main(
            [
                "encode",
                audio_version,
                "--vae",
                vae,
                "--root",
                str(tmp_path),
                "--version",
                "v2",
                "--threads",
                "1",
                "--runner.workers",
                "1",
            ]
        )
        == 0
    )
    assert "latents" in capsys.readouterr().err
    assert (
        main(["encode", audio_version, "--vae", str(tmp_path / "nope"), "--root", str(tmp_path), "--version", "v3"])
        == 2
    )
    assert "no such checkpoint folder" in capsys.readouterr().err
    with tarfile.open(next((tmp_path / "v2" / "shards").glob("*.tar"))) as archive:
        assert any(m.name.endswith(".latent.npy") for m in archive.getmembers())
