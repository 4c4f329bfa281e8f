"""Diffusion objectives and the bridge from a v-predicting network to a k-diffusion denoiser.

Two objectives, both with the network predicting a velocity v from (x_t, t), t in [0, 1]:
- "v" (SAO): the cosine schedule alpha = cos(t pi/2), sigma = sin(t pi/2);
  x_t = alpha x + sigma noise, target v = alpha noise - sigma x.
- "rectified_flow": alpha = 1 - t, sigma = t; target v = noise - x.

Samplers work in the variance-exploding picture of k-diffusion, x = x0 + s * noise with a
noise level s (`sigma` below, SAO's sigma_max 500 ... sigma_min 0.3), through a denoiser
D(x, s) ~ E[x0 | x]. Dividing x_t by alpha maps one picture to the other: s = sigma_t / alpha_t,
so the network sees x * c_in at time t(s) and D = c_skip x + c_out v.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import torch
from torch import Tensor

from model.config import DiffusionConfig

Velocity = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, C, L), t (B,)) -> v (B, C, L)
Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x (B, C, L), sigma (B,)) -> x0 estimate (B, C, L)


def append_dims(v: Tensor, ndim: int) -> Tensor:
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def alpha_sigma(t: Tensor, objective: str) -> tuple[Tensor, Tensor]:
    if objective == "v":
        return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)
    return 1 - t, t


def sample_timesteps(
    batch: int, kind: str, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Tensor:
    """Training times t (B,) in [0, 1]:
    - uniform (SAO's distribution), independent draws;
    - sobol: a scrambled Sobol point set (what stable-audio-tools draws its "uniform" times from): the
      batch covers [0, 1] evenly (one time in each 1/B of it when B is a power of two), so the
      batch's loss varies less from step to step; scrambled with a seed derived from the
      generator's own seed (no draw from a GPU generator, no device sync);
    - stratified: one uniform time in each 1/B of [0, 1], in random order;
    - logit_normal: sigmoid of a standard normal (usual for rectified flow)."""
    source = generator.device if generator is not None else device
    if kind == "uniform":
        t = torch.rand(batch, generator=generator, device=source)
    elif kind == "sobol":
        seed = generator.initial_seed() if generator is not None else int(torch.randint(2**62, (1,)))
        scramble = int.from_bytes(hashlib.sha256(f"sobol {seed}".encode()).digest()[:8], "little") >> 1
        t = torch.quasirandom.SobolEngine(1, scramble=True, seed=scramble).draw(batch, dtype=torch.float32)[:, 0]
    elif kind == "stratified":
        offsets = torch.rand(batch, generator=generator, device=source)
        strata = torch.randperm(batch, generator=generator, device=source)
        t = (strata + offsets) / batch
    else:
        t = torch.sigmoid(torch.randn(batch, generator=generator, device=source))
    return t.to(device)


def noised(x: Tensor, noise: Tensor, t: Tensor, objective: str) -> Tensor:
    alpha, sigma = (append_dims(a, x.ndim) for a in alpha_sigma(t, objective))
    return alpha * x + sigma * noise  # x_t


def velocity_target(x: Tensor, noise: Tensor, t: Tensor, objective: str) -> Tensor:
    if objective == "v":
        alpha, sigma = (append_dims(a, x.ndim) for a in alpha_sigma(t, objective))
        return alpha * noise - sigma * x
    return noise - x


def cfg_keep(
    batch: int, dropout: float, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Tensor:
    """Per example, True where its conditions are kept; False (probability `dropout`) trains the
    unconditional branch that classifier-free guidance needs."""
    source = generator.device if generator is not None else device
    return (torch.rand(batch, generator=generator, device=source) >= dropout).to(device)


def masked_mse(prediction: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over all elements, or over the frames where mask (B, L) is True."""
    squared = (prediction.float() - target.float()).pow(2)  # (B, C, L)
    if mask is None:
        return squared.mean()
    weight = mask[:, None, :].to(squared.dtype).expand_as(squared)
    return (squared * weight).sum() / weight.sum().clamp_min(1)


def diffusion_time(sigma: Tensor, objective: str) -> Tensor:
    """The network's t for a noise level s: atan(s) 2/pi for v (SAO), s / (1 + s) for rectified flow."""
    return torch.atan(sigma) * 2 / math.pi if objective == "v" else sigma / (1 + sigma)


def denoiser_scalings(sigma: Tensor, objective: str) -> tuple[Tensor, Tensor, Tensor]:
    """c_skip, c_out, c_in with sigma_data = 1, so that D(x, s) = c_skip x + c_out v(c_in x, t(s))."""
    if objective == "v":
        c_in = 1 / (sigma**2 + 1).sqrt()  # = alpha
        return c_in**2, -sigma * c_in, c_in
    c_in = 1 / (1 + sigma)  # = 1 - t
    return c_in, -sigma * c_in, c_in


def make_denoiser(velocity: Velocity, config: DiffusionConfig | str) -> Denoiser:
    objective = config if isinstance(config, str) else config.objective

    def denoiser(x: Tensor, sigma: Tensor) -> Tensor:
        c_skip, c_out, c_in = (append_dims(c, x.ndim).to(x.dtype) for c in denoiser_scalings(sigma, objective))
        return c_skip * x + c_out * velocity(x * c_in, diffusion_time(sigma, objective))

    return denoiser
