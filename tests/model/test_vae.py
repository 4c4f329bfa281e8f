import pytest
import torch
from torch import nn

from model.config import VAEConfig, VAELossConfig
from model.training.vae_losses import MultiScaleSTFTDiscriminator, discriminator_loss, generator_losses, stft_loss
from model.vae import AudioVAE, WNConv1d, WNConvTranspose1d, kl_divergence, posterior, snake_beta

# SAO's block structure at a fraction of the width: same strides (x2048), same reach.
SMALL = VAEConfig(channels=2)


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return AudioVAE(SMALL, audio_channels=2).eval()


@pytest.mark.parametrize("frames", [1, 3, 10])
def test_shapes_at_several_lengths(vae, frames):
    audio = torch.randn(2, 2, frames * 2048)
    with torch.no_grad():
        latents = vae.encode(audio, torch.Generator().manual_seed(0))
        assert latents.shape == (2, 64, frames)
        assert vae.decode(latents).shape == audio.shape
        out = vae(audio)
    assert out.reconstruction.shape == audio.shape and out.latents.shape == latents.shape and out.kl.ndim == 0


def test_odd_lengths_are_padded_to_whole_frames(vae):
    with torch.no_grad():
        assert vae.encode(torch.randn(1, 2, 2048 + 5), sample=False).shape == (1, 64, 2)


@pytest.mark.parametrize("chunk, overlap", [(12, 4), (17, 8), (25, 9)])
def test_chunked_encoding_equals_whole(vae, chunk, overlap):
    # The encoder reaches 8 latent frames (measured: one sample moves frames -8..+7), so an
    # overlap of 4 must NOT match and one of 8 or more must.
    audio = torch.randn(1, 2, 30 * 2048)
    with torch.no_grad():
        whole = vae.encode(audio, sample=False)
        chunked = vae.encode(audio, sample=False, chunk_frames=chunk, overlap_frames=overlap)
    assert chunked.shape == whole.shape
    if overlap >= 8:
        torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-4)
    else:
        assert not torch.allclose(chunked, whole, atol=1e-5, rtol=1e-4)


def test_chunked_decoding_equals_whole(vae):
    # The decoder reaches about 10 latent frames either way.
    latents = torch.randn(1, 64, 30)
    with torch.no_grad():
        torch.testing.assert_close(
            vae.decode(latents, chunk_frames=25, overlap_frames=11), vae.decode(latents), atol=1e-5, rtol=1e-4
        )


def test_posterior_sample_is_seeded_and_mean_is_deterministic(vae):
    audio = torch.randn(1, 2, 4 * 2048)
    with torch.no_grad():
        a = vae.encode(audio, torch.Generator().manual_seed(1))
        b = vae.encode(audio, torch.Generator().manual_seed(1))
        c = vae.encode(audio, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bottleneck_matches_sao():
    params = torch.randn(2, 8, 5)
    mean, stdev = posterior(params)
    assert torch.equal(mean, params[:, :4])
    torch.testing.assert_close(stdev, torch.nn.functional.softplus(params[:, 4:]) + 1e-4)
    assert kl_divergence(torch.zeros(2, 4, 5), torch.ones(2, 4, 5)).abs() < 1e-6
    assert kl_divergence(mean, stdev) > 0


def test_weight_norm_is_the_old_torch_parametrization():
    """weight = g * v / |v| with the norm over every dim but 0, for transposed convs too."""
    torch.manual_seed(0)
    for ours, reference in (
        (WNConv1d(3, 5, 4, stride=2, padding=1), nn.Conv1d(3, 5, 4, stride=2, padding=1)),
        (WNConvTranspose1d(5, 3, 4, stride=2, padding=1), nn.ConvTranspose1d(5, 3, 4, stride=2, padding=1)),
    ):
        with torch.no_grad():
            ours.weight_v.normal_()
            ours.weight_g.uniform_(0.5, 2)
            reference.weight.copy_(ours.weight_v * ours.weight_g / ours.weight_v.flatten(1).norm(dim=1)[:, None, None])
            reference.bias.copy_(ours.bias)
        x = torch.randn(2, ours.in_channels, 16)
        torch.testing.assert_close(ours(x), reference(x))
        assert ours.weight_g.shape == (ours.weight_v.shape[0], 1, 1)


def test_snake_beta_formula():
    x = torch.linspace(-3, 3, 7).view(1, 1, 7).repeat(1, 2, 1)
    log_alpha, log_beta = torch.tensor([0.0, 0.5]), torch.tensor([0.0, -0.3])
    expected = x + torch.sin(x * log_alpha.exp().view(1, 2, 1)) ** 2 / (log_beta.exp().view(1, 2, 1) + 1e-9)
    torch.testing.assert_close(snake_beta(x, log_alpha, log_beta), expected)


def test_stft_loss_sees_the_stereo_image():
    torch.manual_seed(0)
    stereo = torch.randn(1, 2, 8192)
    mono = stereo.mean(dim=1, keepdim=True).expand(-1, 2, -1)
    sizes = [512, 128]
    assert stft_loss(stereo, stereo, sizes) < 1e-6
    assert stft_loss(mono, stereo, sizes) > 0.5


def test_vae_training_losses_reach_every_parameter():
    torch.manual_seed(0)
    vae = AudioVAE(SMALL, audio_channels=2)
    config = VAELossConfig(discriminator_filters=4, discriminator_ffts=[256, 128], fft_sizes=[256, 64])
    discriminator = MultiScaleSTFTDiscriminator(2, config)
    audio = torch.randn(2, 2, 2 * 2048) * 0.1
    out = vae(audio, torch.Generator().manual_seed(0))
    losses = generator_losses(out, audio, discriminator, config)
    assert set(losses) == {"stft", "adversarial", "feature_matching", "kl", "total"}
    losses["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vae.parameters())
    vae.zero_grad(set_to_none=True)
    discriminator.zero_grad(set_to_none=True)  # the trainer's alternation: the generator step's grads are not D's
    discriminator_loss(discriminator, audio, out.reconstruction).backward()
    # With every logit inside (-1, 1) the hinge pulls the output bias up for the real batch
    # and down for the fake one equally: its gradient is exactly zero, all others are not.
    for name, p in discriminator.named_parameters():
        assert p.grad is not None and (p.grad.abs().sum() > 0 or name.endswith("conv_post.bias")), name
    assert all(p.grad is None for p in vae.parameters()), "the discriminator step must not reach the VAE"
