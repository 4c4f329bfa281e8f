"""A small published dataset version at the tiny model's rate, made by the real stages:
synthesized WAV files -> `curate` -> `publish`. Shared by the trainer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from orchestration.configs.jobs import CurateJob, ShardJob
from orchestration.jobs.curate import curate
from orchestration.jobs.shard import publish_version


def synthesize(folder: Path, files: int = 6, seconds: float = 2.0, rate: int = 44100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(files):
        tone = np.sin(2 * np.pi * (110 * (i + 1)) * t) * 0.3 + rng.standard_normal(t.size) * 0.01
        soundfile.write(folder / f"piece-{i}.wav", np.stack([tone, tone * 0.8], 1).astype(np.float32), rate)


@pytest.fixture(scope="session")
def curated_clips(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("train-data")
    synthesize(base / "raw")
    curate(
        CurateJob.model_validate(
            {
                "inputs": [{"path": str(base / "raw"), "license": "CC0-1.0"}],
                "output": str(base / "curated"),
                "segment": {"window_s": 1.0, "min_clip_s": 0.5},
                "runner": {"name": "local", "workers": 1},
            }
        )
    )
    return base / "curated"


def publish(clips: Path, version: str, fractions: dict[str, float]) -> str:
    root = clips.parent / "versions"
    publish_version(
        ShardJob.model_validate(
            {
                "clips": str(clips),
                "root": str(root),
                "version": version,
                "splits": {"fractions": fractions},
                "shards": {"min_shards": 4},
                "runner": {"name": "local", "workers": 1},
            }
        )
    )
    return str(root / version)


@pytest.fixture(scope="session")
def audio_version(curated_clips) -> str:
    return publish(curated_clips, "v1", {"train": 1.0})


@pytest.fixture(scope="session")
def split_version(curated_clips) -> str:
    """The same clips with a valid split beside train."""
    return publish(curated_clips, "v1-split", {"train": 0.6, "valid": 0.4})


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the tests' models are small, and on a loaded 2-core machine a
    second thread spins and waits (measured: a small conv 0.7 ms on one thread, 64 ms on two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
