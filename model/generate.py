"""Text to audio: prompts -> conditions -> a sampler over the DiT -> the VAE decoder -> trimmed audio.

As SAO, the model always generates its full length (the config's sample_size, or `length_s`)
and learns silence after `seconds_total`; the caller's audio is trimmed to seconds_total.
Everything random comes from one CPU generator seeded with `seed`, so a seed gives the same
audio on any device up to the device's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
import torch
from torch import Tensor

from curation.core.storage import atomic_local_file
from model.latent_diffusion import LatentDiffusion
from model.noise import RowGenerators, gaussian_like
from model.sampling import SAMPLERS, get_sigmas_polyexponential


@torch.inference_mode()
def generate(
    model: LatentDiffusion,
    prompts: list[str],
    seconds_total: float | Sequence[float],
    *,
    seconds_start: float | Sequence[float] = 0.0,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int | Sequence[int] = 0,
    sampler: str | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    length_s: float | None = None,
    decode_chunk_frames: int | None = None,
) -> Tensor:
    """Audio (B, C, T) for B prompts, T = seconds_total at the model's rate (at most the generated length).
    Unset sampling options take the model config's defaults (SAO: DPM-Solver++ 3M SDE, 100 steps, CFG 7).
    seconds_start and seconds_total may be one value per prompt (T is then the largest; the caller cuts
    each row to its own); `seed` may be one per prompt, giving each row its own noise, the same as
    generating that row alone with its seed."""
    defaults = model.config.sampling
    steps, cfg_scale = steps or defaults.steps, defaults.cfg_scale if cfg_scale is None else cfg_scale
    sampler, sigma_min, sigma_max = (
        sampler or defaults.sampler,
        sigma_min or defaults.sigma_min,
        sigma_max or defaults.sigma_max,
    )
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; samplers: {', '.join(SAMPLERS)}")
    device = next(model.dit.parameters()).device
    ratio, rate = model.vae.ratio, model.config.sample_rate
    frames = model.config.latent_length if length_s is None else max(1, math.ceil(length_s * rate / ratio))
    batch = len(prompts)
    generator = torch.Generator().manual_seed(seed) if isinstance(seed, int) else RowGenerators(seed)
    starts, totals = _per_row(seconds_start, batch), _per_row(seconds_total, batch)
    cond = model.conditioners(list(prompts), starts, totals)
    x = gaussian_like(torch.empty((batch, model.vae.latent_dim, frames)), generator).to(device) * sigma_max  # (B, C, L)
    sigmas = get_sigmas_polyexponential(steps, sigma_min, sigma_max, device=device)
    latents = SAMPLERS[sampler](model.denoiser(cond, cfg_scale), x, sigmas, generator=generator)
    audio = model.vae.decode(latents, chunk_frames=decode_chunk_frames)  # (B, C, L * ratio)
    return audio[..., : round(max(totals) * rate)].float().cpu()


def _per_row(value: float | Sequence[float], batch: int) -> list[float]:
    if isinstance(value, int | float):
        return [float(value)] * batch
    if len(value) != batch:
        raise ValueError(f"{len(value)} values for a batch of {batch} prompts")
    return [float(v) for v in value]


def write_wav(path: str | Path, audio: Tensor, sample_rate: int) -> None:
    """One (C, T) clip as 16-bit WAV, clipped to full scale, written atomically."""
    samples = np.clip(audio.float().numpy().T, -1.0, 1.0)  # (T, C)
    with atomic_local_file(str(path), suffix=".wav") as tmp:
        soundfile.write(tmp, samples, sample_rate, subtype="PCM_16")
