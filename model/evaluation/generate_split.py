"""Generated audio for evaluation: a checkpoint speaks each prompt of a version's split.

Each clip of the split (in manifest order) gets one WAV named by its clip_id, generated from
its sample's prompt and timing (seconds_start, seconds_total) and cut to the reference clip's
duration, so the two sides pair by name. A clip is generated alone with a seed drawn from
(seed, clip_id): its audio does not depend on which other clips are evaluated. A file that is
already there is kept, so an interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.evaluation.errors import EvaluationError
from shards.loader.tars import read_tar_samples
from shards.manifest import read_manifest, shard_urls


@dataclass(frozen=True)
class Request:
    clip_id: str
    prompt: str
    seconds_start: float
    seconds_total: float
    duration_s: float


def split_requests(version: str, split: str) -> list[Request]:
    """The split's prompts and timing, one request per clip (the json members alone are kept)."""
    requests = []
    for url in shard_urls(version, read_manifest(version), [split]):
        for sample in read_tar_samples(url):
            record = json.loads(sample.get("json", b"{}"))
            requests.append(
                Request(
                    sample["__key__"],
                    record.get("prompt", ""),
                    float(record.get("seconds_start", 0.0)),
                    float(record.get("seconds_total", record.get("duration_s", 0.0))),
                    float(record.get("duration_s", 0.0)),
                )
            )
    if not requests:
        raise EvaluationError(f"reference {version}: split {split} holds no clips to generate for")
    return requests


def clip_seed(seed: int, clip_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()[:8], "little") >> 1


def generate_split(
    checkpoint: str,
    requests: list[Request],
    folder: str,
    *,
    seed: int,
    steps: int | None,
    cfg_scale: float | None,
    device: str,
) -> dict[str, Any]:
    """WAVs for the requests not yet in `folder`; returns what made them, for the report (the same
    on a resumed run)."""
    import torch

    from model.checkpoint import load_checkpoint, read_checkpoint_info
    from model.generate import generate, write_wav

    info = read_checkpoint_info(checkpoint)
    if info.kind != "diffusion":
        raise EvaluationError(f"checkpoint {checkpoint}: a {info.kind} checkpoint; generating needs a diffusion one")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise EvaluationError("generation_device cuda: torch sees no GPU here; use auto or cpu")
    model = load_checkpoint(checkpoint, device=device).eval()
    rate = info.config.sample_rate
    model_s = info.config.sample_size / rate
    out = Path(folder)
    for request in requests:
        path = out / f"{request.clip_id}.wav"
        if path.exists():
            continue
        seconds_total = request.seconds_total or model_s
        audio = generate(
            model,
            [request.prompt],
            seconds_total,
            seconds_start=request.seconds_start,
            steps=steps,
            cfg_scale=cfg_scale,
            seed=clip_seed(seed, request.clip_id),
            length_s=max(seconds_total, model_s),
        )[0]
        if request.duration_s:
            audio = audio[..., : round(request.duration_s * rate)]
        write_wav(path, audio, rate)
    return {
        "checkpoint": checkpoint,
        "step": info.step,
        "weights": info.weights,
        "seed": seed,
        "steps": steps or info.config.sampling.steps,
        "cfg_scale": info.config.sampling.cfg_scale if cfg_scale is None else cfg_scale,
        "clips": len(requests),
    }
