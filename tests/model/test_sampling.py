"""Samplers against an analytic denoiser: Gaussian data x0 ~ N(mu, s^2), where E[x0 | x] and the
probability-flow ODE's exact solution are known in closed form."""

import pytest
import torch

from model.sampling import (
    SAMPLERS,
    classifier_free_guidance,
    get_sigmas_karras,
    get_sigmas_polyexponential,
    sample_dpmpp_2m,
    sample_dpmpp_3m_sde,
    sample_euler,
)

MU, S = 0.5, 0.3
SIGMA_MIN, SIGMA_MAX = 0.01, 80.0


def gaussian_denoiser(x, sigma):
    sigma = sigma.view(-1, 1, 1)
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def start_and_exact(n=2048, seed=0):
    """x at sigma_max from the exact marginal N(mu, s^2 + sigma_max^2), and where the ODE takes it."""
    eps = torch.randn(n, 1, 1, generator=torch.Generator().manual_seed(seed))
    x = MU + (S**2 + SIGMA_MAX**2) ** 0.5 * eps
    return x, MU + S / (S**2 + SIGMA_MAX**2) ** 0.5 * (x - MU)


def ode_error(sampler, steps, **options):
    x, exact = start_and_exact()
    sigmas = get_sigmas_polyexponential(steps, SIGMA_MIN, SIGMA_MAX)
    return (sampler(gaussian_denoiser, x, sigmas, **options) - exact).abs().max().item()


@pytest.mark.parametrize(
    "sampler, options, tolerance",
    [
        (sample_euler, {}, 0.04),
        (sample_dpmpp_2m, {}, 2e-3),
        (sample_dpmpp_3m_sde, {"eta": 0.0}, 2e-3),
    ],
)
def test_deterministic_samplers_converge_to_the_exact_ode_solution(sampler, options, tolerance):
    coarse, fine = ode_error(sampler, 10, **options), ode_error(sampler, 80, **options)
    assert fine < tolerance
    assert fine < coarse / 4


def test_second_order_beats_first_order():
    assert ode_error(sample_dpmpp_2m, 20) < ode_error(sample_euler, 20) / 5


def test_sde_sampler_draws_the_data_distribution():
    x, _ = start_and_exact(n=20000, seed=1)
    sigmas = get_sigmas_polyexponential(60, SIGMA_MIN, SIGMA_MAX)
    samples = sample_dpmpp_3m_sde(gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(2))
    assert abs(samples.mean().item() - MU) < 0.01
    assert abs(samples.std().item() - S) < 0.01
    again = sample_dpmpp_3m_sde(gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(2))
    assert torch.equal(samples, again)


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_takes_generator_and_calls_back_once_per_step(name):
    x, _ = start_and_exact(n=64)
    sigmas = get_sigmas_polyexponential(7, SIGMA_MIN, SIGMA_MAX)
    steps = []
    generator = torch.Generator().manual_seed(3)
    out = SAMPLERS[name](gaussian_denoiser, x, sigmas, generator=generator, callback=steps.append)
    assert [step["i"] for step in steps] == list(range(len(sigmas) - 1))
    for i, step in enumerate(steps):
        assert {"x", "i", "sigma", "denoised"} <= set(step)
        assert step["sigma"] == sigmas[i] and step["x"].shape == step["denoised"].shape == x.shape
    torch.testing.assert_close(steps[0]["x"], x)
    torch.testing.assert_close(steps[-1]["denoised"], out)  # the last step lands on the denoised estimate
    alone = SAMPLERS[name](gaussian_denoiser, x, sigmas, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, alone), "a callback changes nothing"


@pytest.mark.parametrize("sampler", [sample_euler, sample_dpmpp_2m])
def test_samplers_that_draw_no_noise_ignore_the_generator(sampler):
    x, _ = start_and_exact(n=64)
    sigmas = get_sigmas_polyexponential(7, SIGMA_MIN, SIGMA_MAX)
    generator = torch.Generator().manual_seed(3)
    without = sampler(gaussian_denoiser, x, sigmas)
    assert torch.equal(without, sampler(gaussian_denoiser, x, sigmas, generator=generator))
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(3).get_state())


@pytest.mark.parametrize("schedule", [get_sigmas_polyexponential, get_sigmas_karras])
def test_schedules_run_from_sigma_max_to_sigma_min_then_zero(schedule):
    sigmas = schedule(10, 0.3, 500.0)
    assert sigmas.shape == (11,) and sigmas[-1] == 0
    torch.testing.assert_close(sigmas[[0, -2]], torch.tensor([500.0, 0.3]))
    assert (sigmas[1:] < sigmas[:-1]).all()


def test_polyexponential_with_rho_1_is_even_in_log_sigma():
    steps = get_sigmas_polyexponential(6, 0.3, 500.0)[:-1].log().diff()
    torch.testing.assert_close(steps, steps[:1].expand_as(steps))


def test_guidance_scale_one_is_the_conditional_and_zero_the_unconditional():
    cond, uncond = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 7.0), uncond + 7 * (cond - uncond))
