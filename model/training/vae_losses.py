"""What trains the VAE: a multi-resolution STFT loss (sum-and-difference for stereo), a
multi-scale STFT discriminator with hinge and feature-matching losses, and the KL term.

The training step alternates (the trainer's loop):

    out = vae(audio, generator)
    losses = generator_losses(out, audio, discriminator, loss_config)   # losses["total"].backward()
    d_loss = discriminator_loss(discriminator, audio, out.reconstruction)  # on detached fakes
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from model.config import VAELossConfig
from model.vae import VAEOutput

EPS = 1e-7

# ---------------------------------------------------------------- STFT loss


def stft_magnitude(x: Tensor, n_fft: int) -> Tensor:
    """|STFT| of every channel: (B, C, T) -> (B * C, F, frames), hann window, hop n_fft / 4."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return spec.abs()


def sum_and_difference(x: Tensor) -> Tensor:
    """Stereo (B, 2, T) as mid and side, (L + R, L - R), so the loss sees the stereo image; mono passes."""
    return torch.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], dim=1) if x.shape[1] == 2 else x


def multi_resolution_stft_loss(fake: Tensor, real: Tensor, fft_sizes: list[int]) -> Tensor:
    """Mean over resolutions of spectral convergence + log-magnitude L1."""
    total = fake.new_zeros(())
    for n_fft in fft_sizes:
        s_fake, s_real = stft_magnitude(fake, n_fft), stft_magnitude(real, n_fft)
        convergence = torch.linalg.norm(s_real - s_fake) / torch.linalg.norm(s_real).clamp_min(EPS)
        log_magnitude = F.l1_loss(torch.log(s_fake.clamp_min(EPS)), torch.log(s_real.clamp_min(EPS)))
        total = total + convergence + log_magnitude
    return total / len(fft_sizes)


def stft_loss(fake: Tensor, real: Tensor, fft_sizes: list[int]) -> Tensor:
    return multi_resolution_stft_loss(sum_and_difference(fake), sum_and_difference(real), fft_sizes)


# ---------------------------------------------------------------- discriminator


class STFTDiscriminator(nn.Module):
    """A 2-D conv net over one resolution's complex STFT (real and imaginary parts as channels),
    striding along frequency, dilating along time (EnCodec's MS-STFT discriminator)."""

    def __init__(self, audio_channels: int, n_fft: int, filters: int, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.n_fft = n_fft
        widths = [filters * min(2**i, 32) for i in range(len(dilations) + 1)]
        layers = [nn.Conv2d(2 * audio_channels, widths[0], (3, 9), padding=(1, 4))]
        for i, d in enumerate(dilations):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4)))
        layers.append(nn.Conv2d(widths[-1], widths[-1], (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(weight_norm(conv) for conv in layers)
        self.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        b = x.shape[0]
        window = torch.hann_window(self.n_fft, device=x.device, dtype=x.dtype)
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]),
            self.n_fft,
            hop_length=self.n_fft // 4,
            window=window,
            normalized=True,
            return_complex=True,
        )  # (B * C, F, frames)
        z = torch.view_as_real(spec).reshape(b, -1, *spec.shape[1:], 2)  # (B, C, F, frames, 2)
        z = z.permute(0, 1, 4, 3, 2).reshape(b, -1, spec.shape[2], spec.shape[1])  # (B, 2C, frames, F)
        features = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), 0.2)
            features.append(z)
        return self.conv_post(z), features  # logits (B, 1, frames, F')


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, audio_channels: int, config: VAELossConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(audio_channels, n, config.discriminator_filters) for n in config.discriminator_ffts
        )

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [d(x) for d in self.discriminators]


# ---------------------------------------------------------------- losses


def discriminator_loss(discriminator: MultiScaleSTFTDiscriminator, real: Tensor, fake: Tensor) -> Tensor:
    """Hinge: mean relu(1 - D(real)) + relu(1 + D(fake)) per scale, averaged; the fakes detached."""
    losses = [
        F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        for (real_logits, _), (fake_logits, _) in zip(discriminator(real), discriminator(fake.detach()), strict=True)
    ]
    return torch.stack(losses).mean()


def generator_losses(
    output: VAEOutput, real: Tensor, discriminator: MultiScaleSTFTDiscriminator, config: VAELossConfig
) -> dict[str, Tensor]:
    """The VAE's side: STFT, adversarial (hinge), feature matching and KL, and their weighted total."""
    fake = output.reconstruction
    with torch.no_grad():
        real_features = [features for _, features in discriminator(real)]
    adversarial, matching = [], []
    for (logits, features), targets in zip(discriminator(fake), real_features, strict=True):
        adversarial.append(F.relu(1 - logits).mean())
        matching += [F.l1_loss(f, t) / t.abs().mean().clamp_min(EPS) for f, t in zip(features, targets, strict=True)]
    losses = {
        "stft": stft_loss(fake, real, config.fft_sizes),
        "adversarial": torch.stack(adversarial).mean(),
        "feature_matching": torch.stack(matching).mean(),
        "kl": output.kl,
    }
    losses["total"] = (
        config.stft_weight * losses["stft"]
        + config.adversarial_weight * losses["adversarial"]
        + config.feature_matching_weight * losses["feature_matching"]
        + config.kl_weight * losses["kl"]
    )
    return losses
