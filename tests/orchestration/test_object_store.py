"""The whole road through a real S3 API (moto's server, the `s3` fixture): curate, vocab, label,
publish, verify, encode, the loader and the trainer with every folder an s3:// URL give the same
bytes as the same run on local disk; curate and label on Ray and Beam too."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from audio_files import music_like, write_audio
from rich.console import Console
from safetensors.torch import load_file

from curation.core.storage import filesystem
from model.checkpoint import save_checkpoint
from model.config import preset
from model.training.config import TrainConfig
from model.training.train import train
from model.vae import AudioVAE
from orchestration.cli.main import main
from orchestration.configs.jobs import CurateJob, EncodeJob, LabelJob, ShardJob, VocabJob
from orchestration.jobs.curate import curate
from orchestration.jobs.encode import encode_version
from orchestration.jobs.label import label
from orchestration.jobs.shard import publish_version
from orchestration.jobs.vocab import build_vocabularies
from shards.loader.config import LoaderConfig
from shards.loader.loader import make_loader
from shards.versions import list_versions, verify_version

QUIET = Console(quiet=True)
ROOT = Path(__file__).resolve().parents[2]
LOCAL = {"name": "local", "workers": 1}


def curate_and_label(inputs: str, root: str, runner: dict, vocab: str) -> None:
    curate(
        CurateJob.model_validate(
            {
                "inputs": [{"path": inputs, "license": "CC0-1.0"}],
                "output": f"{root}/curated",
                "segment": {"window_s": 1.5, "min_clip_s": 1.0},
                "runner": runner,
            }
        ),
        QUIET,
    )
    if vocab == f"{root}/vocab":
        build_vocabularies(
            VocabJob.model_validate(
                {
                    "output": vocab,
                    "corpus": [f"{root}/curated"],
                    "builtin_tags": False,
                    "prompts": {"combinations": 4},
                    "runner": runner,
                }
            ),
            QUIET,
        )
    label(
        LabelJob.model_validate(
            {
                "clips": f"{root}/curated",
                "vocab": vocab,
                "output": f"{root}/labels",
                "clap": {"backend": "random", "architecture": "HTSAT-mini", "threads": 1},
                "runner": runner,
            }
        ),
        QUIET,
    )


def whole_road(inputs: str, root: str, vae: str) -> None:
    curate_and_label(inputs, root, LOCAL, vocab=f"{root}/vocab")
    publish_and_encode(root, vae, LOCAL)


def publish_and_encode(root: str, vae: str, runner: dict) -> None:
    publish_version(
        ShardJob.model_validate(
            {
                "clips": f"{root}/curated",
                "labels": f"{root}/labels",
                "root": f"{root}/versions",
                "version": "v1",
                "splits": {"fractions": {"train": 1.0}},
                "shards": {"min_shards": 2},
                "runner": runner,
            }
        ),
        QUIET,
    )
    encode_version(
        EncodeJob.model_validate(
            {
                "source": f"{root}/versions/v1",
                "vae": vae,
                "root": f"{root}/versions",
                "version": "v1-latents",
                "threads": 1,
                "batch_size": 2,
                "runner": runner,
            }
        ),
        QUIET,
    )


def files(root: str) -> dict[str, bytes]:
    """Every file under `root` (a folder or a URL) by its path relative to `root`."""
    fs, path = filesystem(root)
    return {name[len(path) + 1 :]: fs.cat_file(name) for name in fs.find(path)}


def assert_same_outputs(there: dict[str, bytes], here: dict[str, bytes]) -> int:
    """Byte for byte, but for the JSON and Markdown records of where and when a run ran (paths,
    timings, dates). Returns how many files were compared byte for byte."""
    assert sorted(there) == sorted(here)
    compared = 0
    for name, data in here.items():
        if not name.endswith((".json", ".md")):
            assert there[name] == data, f"{name} differs"
            compared += 1
    return compared


@pytest.fixture(scope="module")
def roads(s3, tmp_path_factory) -> dict[str, str]:
    """The same raw audio in the bucket, the whole road run twice: into a local folder and into
    the bucket."""
    base = tmp_path_factory.mktemp("object-store")
    raw = base / "raw"
    for i in range(4):
        write_audio(raw / f"piece {i}.wav", music_like(3.0, seed=i), 44100)
    fs, _ = filesystem(s3.url())
    for file in sorted(raw.iterdir()):
        fs.pipe_file(s3.url("raw", file.name).removeprefix("s3://"), file.read_bytes())
    torch.manual_seed(0)
    vae = str(save_checkpoint(base / "vae", AudioVAE(preset("tiny").vae, 2), preset("tiny")))
    roads = {"inputs": s3.url("raw"), "local": str(base / "local"), "s3": s3.url("road"), "vae": vae}
    for where in ("local", "s3"):
        whole_road(roads["inputs"], roads[where], vae)
    return roads


@pytest.mark.slow
def test_every_table_and_shard_written_to_s3_equals_the_local_disk_run(roads):
    compared = {
        folder: assert_same_outputs(files(f"{roads['s3']}/{folder}"), files(f"{roads['local']}/{folder}"))
        for folder in ("curated", "vocab", "labels", "versions/v1", "versions/v1-latents")
    }
    assert compared["curated"] >= 4 and compared["versions/v1"] >= 4 and compared["versions/v1-latents"] >= 4
    assert not [name for name in files(roads["s3"]) if "/." in f"/{name}"]  # no temporary, no lease left


@pytest.mark.slow
def test_versions_verify_the_loader_and_the_trainer_read_the_version_from_s3(roads, tmp_path, capsys):
    for version in ("v1", "v1-latents"):
        assert verify_version(f"{roads['s3']}/versions/{version}") == []
    assert main(["versions", "verify", f"{roads['s3']}/versions/v1"]) == 0
    assert "every shard and sidecar matches the manifest" in capsys.readouterr().err
    listed = list_versions(f"{roads['s3']}/versions")
    assert [(v["version"], v["published"]) for v in listed] == [("v1", True), ("v1-latents", True)]

    def batches(root: str) -> list[dict]:
        return list(make_loader(f"{root}/versions/v1", LoaderConfig(batch_size=2, num_workers=0)))

    there, here = batches(roads["s3"]), batches(roads["local"])
    assert len(there) == len(here) == 4
    for a, b in zip(there, here, strict=True):
        assert a["key"] == b["key"] and torch.equal(a["audio"], b["audio"]) and a["prompt"] == b["prompt"]

    def trained(root: str, output: Path) -> dict[str, torch.Tensor]:
        config = {
            "output": str(output),
            "model": "tiny",
            "sample_size": 8192,
            "device": "cpu",
            "vae": roads["vae"],
            "data": {"version": f"{root}/versions/v1-latents", "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
            "max_steps": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            "demo": {"prompts": ["Calm"], "seconds": 0.2, "steps": 2, "cfg_scales": [3.0]},
        }
        assert train(TrainConfig.model_validate(config))["step"] == 2
        return load_file(str(output / "checkpoints" / "step-00000002" / "model.safetensors"))

    from_s3, from_disk = trained(roads["s3"], tmp_path / "s3"), trained(roads["local"], tmp_path / "local")
    assert from_s3.keys() == from_disk.keys() and all(torch.equal(from_s3[k], from_disk[k]) for k in from_s3)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ray", "beam"])
def test_the_road_through_s3_on_ray_and_beam_equals_the_local_disk_run(roads, s3, engine):
    """Workers in other processes (Ray's) or threads (Beam's) reach the bucket with the endpoint and
    credentials of the environment they inherit, as a cluster's workers do from theirs."""
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint
    root = s3.url(engine)
    with contextlib.ExitStack() as stack:
        if engine == "ray":  # one local Ray for both jobs (each reuses a Ray it finds): one start, warm workers
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            stack.callback(ray.shutdown)
        runner = {"name": engine, "workers": 2}
        curate_and_label(roads["inputs"], root, runner, vocab=f"{roads['s3']}/vocab")
        publish_and_encode(root, roads["vae"], runner)
    for folder in ("curated", "labels", "versions/v1", "versions/v1-latents"):
        assert assert_same_outputs(files(f"{root}/{folder}"), files(f"{roads['local']}/{folder}")) >= 4


@pytest.mark.slow
def test_missing_credentials_and_an_unreachable_endpoint_are_one_line_each(s3, tmp_path):
    without_keys = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    without_keys |= {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    unreachable = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    for env, said in [
        (without_keys, "Unable to locate credentials; give credentials in the environment (AWS_ACCESS_KEY_ID"),
        (unreachable, 'Could not connect to the endpoint URL: "http://127.0.0.1:9/soundry/nowhere"'),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "curate", "--inputs", "[{path: s3://soundry/raw}]"]
            + ["--output", s3.url("nowhere")],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert "soundry-test-secret" not in done.stderr + done.stdout
