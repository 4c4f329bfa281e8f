import pytest
import torch

from model.conditioners import Conditioning
from model.config import ModelConfig
from model.diffusion import cfg_keep, make_denoiser, noised, velocity_target
from model.latent_diffusion import BatchError, LatentDiffusion, latent_padding_mask

FRAMES = 16


def tiny_model(**diffusion) -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(ModelConfig(sample_size=2048 * FRAMES, diffusion=diffusion))


def randomize_zero_inits(model: LatentDiffusion) -> None:
    """Give the zero-initialized projections values, so that every path carries signal."""
    with torch.no_grad():
        for p in model.dit.parameters():
            if not p.any():
                p.normal_(std=0.02)


@pytest.fixture(scope="module")
def model():
    model = tiny_model()
    randomize_zero_inits(model)
    return model


def batch(b: int = 2, **fields):
    return {
        "latents": torch.randn(b, 64, FRAMES, generator=torch.Generator().manual_seed(b)),
        "prompt": ["a calm solo piano piece", "fast techno, 140 BPM"][:b],
        "seconds_start": torch.tensor([0.0, 12.0])[:b],
        "seconds_total": torch.tensor([30.0, 600.0])[:b],
        **fields,
    }


def test_conditioning_layout(model):
    cond = model.condition(batch())
    max_length, width = model.config.conditioning.prompt.max_length, model.config.conditioning.cond_dim
    assert cond.cross_tokens.shape == (2, max_length + 2, width)  # prompt tokens, seconds_start, seconds_total
    assert cond.cross_mask.shape == (2, max_length + 2) and cond.cross_mask[:, -2:].all()
    assert cond.global_cond.shape == (2, 2 * width)
    padding = ~cond.cross_mask[:, :max_length]
    assert padding.any() and not cond.cross_tokens[:, :max_length][padding].any(), "padded prompt tokens are zeros"
    # seconds_total is clamped to [0, 512]: 600 s embeds as 512 s.
    clamped = model.condition(batch(seconds_total=torch.tensor([30.0, 512.0])))
    torch.testing.assert_close(clamped.global_cond, cond.global_cond)
    assert not torch.allclose(
        model.condition(batch(seconds_total=torch.tensor([30.0, 400.0]))).global_cond, cond.global_cond
    )


def test_sao_sized_context_has_130_tokens():
    config = ModelConfig(conditioning={"prompt": {"max_length": 128}})
    model = LatentDiffusion(config)
    assert model.condition(batch()).cross_tokens.shape[1] == 130


def test_loss_is_seeded_and_works_from_latents_and_from_audio(model):
    first = model.loss(batch(), torch.Generator().manual_seed(3))
    assert first.ndim == 0 and torch.isfinite(first)
    assert torch.equal(first, model.loss(batch(), torch.Generator().manual_seed(3)))
    assert not torch.equal(first, model.loss(batch(), torch.Generator().manual_seed(4)))
    audio = batch(audio=torch.randn(2, 2, 2048 * 4))
    del audio["latents"]
    assert torch.isfinite(model.loss(audio, torch.Generator().manual_seed(3)))


def test_a_batch_without_a_field_is_named():
    with pytest.raises(BatchError, match="'prompt'"):
        tiny_model().loss({k: v for k, v in batch().items() if k != "prompt"})
    with pytest.raises(BatchError, match="neither 'latents' nor 'audio'"):
        tiny_model().loss({k: v for k, v in batch().items() if k != "latents"})


def test_gradient_reaches_every_trainable_parameter_and_nothing_frozen():
    model = tiny_model(cfg_dropout=0.0)
    randomize_zero_inits(model)
    model.loss(batch(), torch.Generator().manual_seed(0)).backward()
    trainable = model.trainable_parameters()
    assert trainable and all(name.startswith(("dit.", "conditioners.seconds_")) for name in trainable)
    unreached = [name for name, p in trainable.items() if p.grad is None or not p.grad.any()]
    assert not unreached
    frozen = [name for name, p in model.named_parameters() if name not in trainable]
    assert any(n.startswith("vae.") for n in frozen) and any(
        n.startswith("conditioners.prompt.encoder.") for n in frozen
    )
    assert all(p.grad is None for name, p in model.named_parameters() if name not in trainable)


def test_cfg_at_scale_one_equals_the_conditional_output(model):
    cond = model.condition(batch())
    x, t = torch.randn(2, 64, FRAMES), torch.rand(2)
    with torch.no_grad():
        conditional = model.velocity(x, t, cond)
        unconditional = model.velocity(x, t, cond.without_cross())
        torch.testing.assert_close(model.guided_velocity(x, t, cond, 1.0), conditional, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.guided_velocity(x, t, cond, 0.0), unconditional, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(conditional, unconditional), "the prompt must matter, or the check above proves nothing"


def test_cfg_dropout_zeroes_whole_examples():
    assert not cfg_keep(64, 1.0).any() and cfg_keep(64, 0.0).all()
    kept = cfg_keep(20000, 0.1, torch.Generator().manual_seed(0))
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.01
    cond = Conditioning(torch.randn(3, 5, 4), torch.ones(3, 5, dtype=torch.bool), torch.randn(3, 8))
    dropped = cond.drop_cross(torch.tensor([True, False, True]))
    assert not dropped.cross_tokens[1].any() and torch.equal(dropped.cross_tokens[[0, 2]], cond.cross_tokens[[0, 2]])
    assert torch.equal(dropped.global_cond, cond.global_cond), "the timing (global) condition is never dropped"


@pytest.mark.parametrize("objective", ["v", "rectified_flow"])
def test_the_denoiser_recovers_x0_from_the_true_velocity(objective):
    """D(x, sigma) = c_skip x + c_out v(c_in x, t(sigma)) is exact when v is: the scalings and the
    sigma -> t map agree with the training-time noising."""
    x0, noise = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    sigma = torch.tensor([0.3, 2.0, 500.0])

    def true_velocity(x_t, t):
        torch.testing.assert_close(x_t, noised(x0, noise, t, objective), atol=1e-5, rtol=1e-4)
        return velocity_target(x0, noise, t, objective)

    x = x0 + sigma.view(-1, 1, 1) * noise
    torch.testing.assert_close(make_denoiser(true_velocity, objective)(x, sigma), x0, atol=1e-4, rtol=1e-4)


def test_padding_mask_at_either_rate():
    mask = torch.zeros(2, 3 * 2048, dtype=torch.bool)
    mask[0, :2049] = True
    assert latent_padding_mask(mask, 3, 2048).tolist() == [[True, True, False], [False, False, False]]
    latent = torch.tensor([[True, False, False]])
    assert torch.equal(latent_padding_mask(latent, 3, 2048), latent)


def test_masking_padding_leaves_padded_frames_out_of_the_loss():
    # At init the DiT is frame-local (its blocks are identities), so changing the padded
    # frames changes nothing the masked loss sees.
    mask = torch.zeros(2, FRAMES, dtype=torch.bool)
    mask[:, : FRAMES // 2] = True
    masked, plain = tiny_model(mask_padding=True), tiny_model(mask_padding=False)
    with torch.no_grad():
        a = masked.loss(batch(padding_mask=mask), torch.Generator().manual_seed(0))
        b = plain.loss(batch(padding_mask=mask), torch.Generator().manual_seed(0))
        noisy = batch(padding_mask=mask)
        noisy["latents"][..., FRAMES // 2 :] += 100
        assert torch.equal(masked.loss(noisy, torch.Generator().manual_seed(0)), a)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("kind", ["sobol", "stratified"])
def test_even_timesteps_cover_every_stratum_and_are_seeded(kind):
    from model.diffusion import sample_timesteps

    t = sample_timesteps(8, kind, torch.Generator().manual_seed(5))
    assert torch.equal(t, sample_timesteps(8, kind, torch.Generator().manual_seed(5)))
    assert not torch.equal(t, sample_timesteps(8, kind, torch.Generator().manual_seed(6)))
    assert ((t >= 0) & (t < 1)).all()
    assert sorted((t * 8).floor().long().tolist()) == list(range(8))  # one time in each eighth of [0, 1]
    uniform = sample_timesteps(4096, "uniform", torch.Generator().manual_seed(0))
    assert sorted((uniform[:8] * 8).floor().long().tolist()) != list(range(8))  # what plain draws do not promise


def test_only_the_conditioners_the_config_uses_are_built():
    config = ModelConfig(sample_size=2048 * FRAMES, conditioning={"cross_attention_ids": ["prompt"], "global_ids": []})
    model = LatentDiffusion(config)
    assert not any(name.startswith("conditioners.seconds_") for name in model.state_dict())
    model.loss(batch(), torch.Generator().manual_seed(0)).backward()
    unreached = [n for n, p in model.trainable_parameters().items() if p.grad is None]
    assert not unreached  # what DDP without find_unused_parameters needs
