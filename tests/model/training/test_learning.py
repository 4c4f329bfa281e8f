"""The tiny model learns on the demo data: its diffusion loss on a fixed batch (clip starts,
fixed timesteps and noise), falls well below where training started.

The data is the demo corpus (procedural pieces with known instruments and tempi) curated,
published and pre-encoded by the real stages; the loss is measured on checkpoints the
trainer wrote, so the check goes through everything a user's run goes through."""

import json
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import preset
from model.training.config import TrainConfig
from model.training.data import to_device
from model.training.train import train
from model.vae import AudioVAE
from orchestration.configs.jobs import CurateJob, EncodeJob, ShardJob
from orchestration.jobs.curate import curate
from orchestration.jobs.encode import encode_version
from orchestration.jobs.shard import publish_version
from shards.loader.config import LoaderConfig
from shards.loader.loader import make_loader

LATENT_FRAMES = 32


@pytest.fixture(scope="module")
def demo_latents(demo_corpus, tmp_path_factory) -> tuple[str, str]:
    corpus, _ = demo_corpus
    base = tmp_path_factory.mktemp("learning")
    local = {"name": "local", "workers": 1}
    curate(
        CurateJob.model_validate(
            {
                "inputs": [{"path": str(corpus), "license": "CC0-1.0"}],
                "output": str(base / "curated"),
                "segment": {"window_s": 2.0, "min_clip_s": 1.6},
                "runner": local,
            }
        )
    )
    publish_version(
        ShardJob.model_validate(
            {
                "clips": str(base / "curated"),
                "root": str(base / "versions"),
                "version": "audio",
                "splits": {"fractions": {"train": 1.0}},
                "runner": local,
            }
        )
    )
    torch.manual_seed(0)
    config = preset("tiny")
    vae = save_checkpoint(base / "vae", AudioVAE(config.vae, config.audio_channels), config)
    encode_version(
        EncodeJob.model_validate(
            {
                "source": str(base / "versions" / "audio"),
                "vae": str(vae),
                "root": str(base / "versions"),
                "version": "latents",
                "latents": "mean",
                "threads": 1,
                "runner": local,
            }
        )
    )
    return str(base / "versions" / "latents"), str(vae)


def fixed_loss(checkpoint: Path, batch: dict, draws: int = 8) -> float:
    model = load_checkpoint(checkpoint, use_ema=False).eval()
    losses = []
    with torch.no_grad():
        for draw in range(draws):  # the same timesteps, noise and dropout for every checkpoint
            losses.append(model.loss(batch, torch.Generator().manual_seed(draw)).item())
    return sum(losses) / len(losses)


def test_the_tiny_model_learns_on_the_demo_data(tmp_path, demo_latents):
    version, vae = demo_latents
    run = tmp_path / "run"
    config = {
        "output": str(run),
        "data": {"version": version, "batch_size": 8, "workers": 0},
        "vae": vae,
        "sample_size": LATENT_FRAMES * 2048,
        "log_every": 10,
        "optimizer": {"lr": 2e-3},
        "schedule": {"warmup_steps": 10},
        "demo": {"seconds": 0.1, "steps": 1, "cfg_scales": [3.0]},
    }
    summary = train(TrainConfig.model_validate({**config, "max_steps": 150, "checkpoint_every": 150}))
    assert summary["step"] == 150
    first = train(TrainConfig.model_validate({**config, "output": str(tmp_path / "start"), "max_steps": 1}))
    fixed = make_loader(
        version,
        LoaderConfig(batch_size=16, num_workers=0, latents=True, latent_size=LATENT_FRAMES, random_crop=False),
        seed=0,
    )
    batch = to_device(next(iter(fixed)), torch.device("cpu"))
    start, end = fixed_loss(Path(first["checkpoint"]), batch), fixed_loss(Path(summary["checkpoint"]), batch)
    assert end < 0.5 * start, f"loss on the fixed batch {start:.3f} -> {end:.3f}"
    curve = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(curve[-3:]) < 0.6 * sum(curve[:3]), curve  # the training loss falls too
