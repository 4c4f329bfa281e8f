"""Samplers: small pure functions `sample_x(denoiser, x, sigmas, ...)`, k-diffusion style.

A denoiser D(x, sigma) estimates the clean sample from x = x0 + sigma * noise (see
model/diffusion.py for the bridge from a v-network). `sigmas` is a decreasing schedule ending
in 0 from a `get_sigmas_x(n, ...)` function; the start is pure noise x = sigma_max * noise.
The DPM-Solver++ steps are written in lambda = -log(sigma), the half log-SNR, where their
exponential-integrator form is exact for a constant denoiser.

SDE noise is plain seeded Gaussian noise per step (k-diffusion draws it from a Brownian tree
so that results agree across step counts; a fixed seed and step count reproduce here).

Every sampler takes the same keywords, as k-diffusion's do: `generator` (the noise source) and
`callback`, called once per step with a dict of `x` (before the step), `i`, `sigma` and `denoised`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from model.diffusion import Denoiser
from model.noise import NoiseSource, gaussian_like


def get_sigmas_polyexponential(
    n: int, sigma_min: float, sigma_max: float, rho: float = 1.0, device: torch.device | None = None
) -> Tensor:
    """n noise levels, polynomial in log sigma from sigma_max to sigma_min (rho 1: evenly spaced in
    log sigma, SAO's schedule), then 0."""
    ramp = torch.linspace(1, 0, n, device=device, dtype=torch.float64) ** rho
    sigmas = torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()  # (n + 1,)


def get_sigmas_karras(
    n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, device: torch.device | None = None
) -> Tensor:
    """Karras et al. (2022): evenly spaced in sigma^(1/rho), then 0."""
    ramp = torch.linspace(0, 1, n, device=device, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()  # (n + 1,)


def classifier_free_guidance(conditional: Tensor, unconditional: Tensor, scale: float) -> Tensor:
    """uncond + scale * (cond - uncond): scale 1 is the conditional model, larger follows the prompt harder."""
    return unconditional + scale * (conditional - unconditional)


StepCallback = Callable[[dict[str, Any]], None]


def _denoise(denoiser: Denoiser, x: Tensor, sigma: Tensor) -> Tensor:
    return denoiser(x, sigma.to(x.device).expand(x.shape[0]))  # sigma () -> (B,)


def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: NoiseSource | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    """Euler steps along the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
    # An ODE sampler draws no noise: `generator` is accepted so that every sampler is called alike.
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:], strict=True)):
        denoised = _denoise(denoiser, x, sigma)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
        d = (x - denoised) / sigma
        x = x + d * (sigma_next - sigma)
    return x


def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    generator: NoiseSource | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    """DPM-Solver++(2M): second-order multistep, the previous denoised estimate extrapolated in lambda."""
    # An ODE sampler draws no noise: `generator` is accepted so that every sampler is called alike.
    previous, h_previous = None, None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:], strict=True)):
        denoised = _denoise(denoiser, x, sigma)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
        if sigma_next == 0:
            x = denoised
            continue
        h = sigma.log() - sigma_next.log()  # lambda_next - lambda
        estimate = denoised
        if previous is not None:
            r = h_previous / h
            estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
        x = (sigma_next / sigma) * x - torch.expm1(-h) * estimate
        previous, h_previous = denoised, h
    return x


def sample_dpmpp_3m_sde(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    generator: NoiseSource | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    """DPM-Solver++(3M) SDE (SAO's sampler): third-order multistep in lambda with fresh noise
    each step (eta 1: the full reverse SDE; eta 0: the ODE). The first steps are 1st and 2nd order."""
    d1_prev, d2_prev = None, None  # the two previous denoised estimates
    h1_prev, h2_prev = None, None  # and their lambda steps
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:], strict=True)):
        denoised = _denoise(denoiser, x, sigma)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
        if sigma_next == 0:
            x = denoised
            continue
        h = sigma.log() - sigma_next.log()
        h_eta = h * (eta + 1)
        x = torch.exp(-h_eta) * x - torch.expm1(-h_eta) * denoised
        phi_2 = torch.expm1(-h_eta) / h_eta + 1
        if h2_prev is not None:
            r0, r1 = h1_prev / h, h2_prev / h
            slope_0 = (denoised - d1_prev) / r0
            slope_1 = (d1_prev - d2_prev) / r1
            d1 = slope_0 + (slope_0 - slope_1) * r0 / (r0 + r1)
            d2 = (slope_0 - slope_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x = x + phi_2 * d1 - phi_3 * d2
        elif h1_prev is not None:
            x = x + phi_2 * (denoised - d1_prev) / (h1_prev / h)
        if eta:
            x = x + gaussian_like(x, generator) * sigma_next * (-torch.expm1(-2 * h * eta)).sqrt() * s_noise
        d1_prev, d2_prev = denoised, d1_prev
        h1_prev, h2_prev = h, h1_prev
    return x


SAMPLERS = {"dpmpp-3m-sde": sample_dpmpp_3m_sde, "dpmpp-2m": sample_dpmpp_2m, "euler": sample_euler}
