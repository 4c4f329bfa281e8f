"""Test audio made on the spot: synthesized signals written with soundfile or encoded
with the ffmpeg the project finds. Nothing is downloaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile

from curation.ffmpeg_binary import find_ffmpeg


def music_like(seconds: float, rate: int = 44100, channels: int = 2, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Harmonic tones with a noise floor: loud enough and wide enough to pass the filters."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (i + 1) for i, f in enumerate(rng.uniform(100, 2000, 6)))
    signal = tone / 3 + 0.05 * rng.standard_normal(len(t))
    pcm = np.stack([signal * (0.8 + 0.2 * c) for c in range(channels)], axis=1)
    return (level * pcm / np.abs(pcm).max()).astype(np.float32)


def write_audio(path: Path, pcm: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), pcm, rate, subtype=subtype)
    return path


def encode(source: Path, target: Path, *args: str, tags: dict[str, str] | None = None) -> Path:
    """ffmpeg source -> target with extra codec arguments and container tags."""
    metadata = [x for k, v in (tags or {}).items() for x in ("-metadata", f"{k}={v}")]
    subprocess.run(
        [
            find_ffmpeg(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source),
            *args,
            *metadata,
            str(target),
        ],
        check=True,
    )
    return target
