"""Generated audio for evaluation: a checkpoint speaks each prompt of a version's split.

Each clip of the split (in manifest order) gets one WAV named by its clip_id, generated from
its sample's prompt and timing (seconds_start, seconds_total) and cut to the reference clip's
duration, so the two sides pair by name. Each clip's noise comes from its own seed, drawn from
(seed, clip_id): its audio does not depend on which other clips are evaluated or share its batch. A file that is
already there is kept, so an interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.evaluation.errors import EvaluationError
from shards.loader.tars import read_tar_samples
from shards.manifest import read_manifest, shard_urls

if TYPE_CHECKING:
    from torch import Tensor

    from model.latent_diffusion import LatentDiffusion


@dataclass(frozen=True)
class Request:
    clip_id: str
    prompt: str
    seconds_start: float
    seconds_total: float
    duration_s: float


def split_requests(version: str, split: str, max_clips: int | None = None) -> list[Request]:
    """The split's prompts and timing, one request per clip (the json members alone are kept), the
    first `max_clips` when given."""
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
            if len(requests) == max_clips:
                return requests
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
    batch_size: int = 1,
) -> dict[str, Any]:
    """WAVs for the requests not yet in `folder`, `batch_size` clips at a time; returns what made
    them, for the report (the same on a resumed run)."""
    import torch

    from model.checkpoint import load_checkpoint, read_checkpoint_info
    from model.generate import write_wav

    info = read_checkpoint_info(checkpoint)
    if info.kind != "diffusion":
        raise EvaluationError(f"checkpoint {checkpoint}: a {info.kind} checkpoint; generating needs a diffusion one")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise EvaluationError("generation_device cuda: torch sees no GPU here; use auto or cpu")
    model = load_checkpoint(checkpoint, device=device).eval()
    out = Path(folder)
    missing = [r for r in requests if not (out / f"{r.clip_id}.wav").exists()]
    for request, clip in generate_requests(model, missing, seed, steps, cfg_scale, batch_size):
        write_wav(out / f"{request.clip_id}.wav", clip, info.config.sample_rate)
    return {
        "checkpoint": checkpoint,
        "step": info.step,
        "weights": info.weights,
        "seed": seed,
        "steps": steps or info.config.sampling.steps,
        "cfg_scale": info.config.sampling.cfg_scale if cfg_scale is None else cfg_scale,
        "clips": len(requests),
    }


def generate_requests(
    model: LatentDiffusion,
    requests: list[Request],
    seed: int,
    steps: int | None,
    cfg_scale: float | None,
    batch_size: int,
) -> Iterator[tuple[Request, Tensor]]:
    """Each request's clip (C, T), cut to its reference clip's duration, generated `batch_size` at a
    time (clips whose generated length differs are never batched together), each from its own seed."""
    from model.generate import generate

    rate = model.config.sample_rate
    model_s = model.config.sample_size / rate
    for batch in _batches(requests, batch_size, lambda r: max(r.seconds_total or model_s, model_s)):
        totals = [r.seconds_total or model_s for r in batch]
        audio = generate(
            model,
            [r.prompt for r in batch],
            totals,
            seconds_start=[r.seconds_start for r in batch],
            steps=steps,
            cfg_scale=cfg_scale,
            seed=[clip_seed(seed, r.clip_id) for r in batch],
            length_s=max(totals[0], model_s),
        )
        for request, total, clip in zip(batch, totals, audio, strict=True):
            length = min(total, request.duration_s) if request.duration_s else total
            yield request, clip[..., : round(length * rate)]


def _batches(requests: list[Request], size: int, length: Callable[[Request], float]) -> Iterator[list[Request]]:
    """Requests of one generated length together, in their order, at most `size` a batch."""
    groups: dict[float, list[Request]] = {}
    for request in requests:
        groups.setdefault(length(request), []).append(request)
    for group in groups.values():
        for start in range(0, len(group), size):
            yield group[start : start + size]
