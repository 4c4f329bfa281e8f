"""The audio VAE: Stable Audio Open's "Oobleck" autoencoder.

A 1-D convolutional encoder/decoder with Snake activations and weight-normalized
convolutions, downsampling by the product of the strides (SAO: 2*4*4*8*8 = 2048 samples per
latent frame), and a VAE bottleneck: the encoder's 2*latent_dim channels are the posterior's
mean and scale, stdev = softplus(scale) + 1e-4, latents = mean + stdev * noise.

Modules are nn.Sequential stacks named `layers` in the order stable-audio-tools builds them,
so this VAE's state dict has SAO's names (`encoder.layers.1.layers.0.layers.1.weight_v`)
and the old weight-norm parametrization (`weight_g`, `weight_v`), checkpoint for checkpoint.

Long audio is encoded and decoded in overlapping chunks: each chunk carries `overlap`
latent frames of context on either side, more than the convolutions' reach, so the kept
middle of every chunk equals what encoding the whole would give, at a memory cost bounded
by the chunk size. With SAO's strides one input sample reaches 8 latent frames through the
encoder and one latent frame about 10 frames of audio through the decoder (measured); the
default overlap of 16 frames covers both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import VAEConfig
from model.noise import gaussian_like

# ---------------------------------------------------------------- helpers


def weight_norm(g: Tensor, v: Tensor) -> Tensor:
    """w = g * v / |v|, the norm over every dim but 0 (the input channel of a transposed conv)."""
    return v * (g / torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True))


def snake_beta(x: Tensor, log_alpha: Tensor, log_beta: Tensor) -> Tensor:
    """SnakeBeta with log-scale parameters: x + 1/(e^beta + 1e-9) * sin^2(e^alpha * x), per channel."""
    alpha = log_alpha.exp()[None, :, None]  # (1, C, 1)
    beta = log_beta.exp()[None, :, None]
    return x + torch.sin(alpha * x).pow(2) / (beta + 1e-9)


def pad_to_multiple(audio: Tensor, multiple: int) -> Tensor:
    """Silence appended so the length is a whole number of latent frames."""
    extra = -audio.shape[-1] % multiple
    return F.pad(audio, (0, extra)) if extra else audio


def map_in_chunks(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    frames: int,
    chunk: int,
    overlap: int,
    in_per_frame: int,
    out_per_frame: int,
) -> Tensor:
    """fn over overlapping windows of `chunk` latent frames, keeping each window's middle.

    Every kept frame has `overlap` frames of real context on both sides (or the true edge of
    x), so with overlap beyond the convolutions' reach the result equals fn(x)."""
    if chunk <= 2 * overlap:
        raise ValueError(f"chunk ({chunk} frames) must be longer than twice the overlap ({overlap} frames)")
    pieces, done = [], 0
    while done < frames:
        start = max(0, min(done - overlap, frames - chunk))
        end = min(start + chunk, frames)
        keep_end = frames if end == frames else end - overlap
        y = fn(x[..., start * in_per_frame : end * in_per_frame])
        pieces.append(y[..., (done - start) * out_per_frame : (keep_end - start) * out_per_frame])
        done = keep_end
    return torch.cat(pieces, dim=-1)


# ---------------------------------------------------------------- layers


class WNConv1d(nn.Conv1d):
    """Conv1d whose weight is weight_g * weight_v / |weight_v| (the old torch weight_norm layout)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        v = self.weight.detach()
        del self.weight
        self.weight_v = nn.Parameter(v.clone())
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, weight_norm(self.weight_g, self.weight_v), self.bias)


class WNConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d with the same weight norm; its weight is (in, out, k), so g is per input channel."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        v = self.weight.detach()
        del self.weight
        self.weight_v = nn.Parameter(v.clone())
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        weight = weight_norm(self.weight_g, self.weight_v)
        return F.conv_transpose1d(
            x, weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


class Snake(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))  # log-scale: e^0 = 1 at init
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return snake_beta(x, self.alpha, self.beta)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            Snake(channels),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Snake(channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)  # (B, C, T)


# ---------------------------------------------------------------- blocks


class EncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ResidualUnit(in_channels, 1),
            ResidualUnit(in_channels, 3),
            ResidualUnit(in_channels, 9),
            Snake(in_channels),
            WNConv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # (B, C_in, T) -> (B, C_out, T / stride)


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            Snake(in_channels),
            WNConvTranspose1d(
                in_channels, out_channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)
            ),
            ResidualUnit(out_channels, 1),
            ResidualUnit(out_channels, 3),
            ResidualUnit(out_channels, 9),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # (B, C_in, L) -> (B, C_out, L * stride)


# ---------------------------------------------------------------- model


class OobleckEncoder(nn.Module):
    def __init__(self, config: VAEConfig, in_channels: int) -> None:
        super().__init__()
        widths = [config.channels * m for m in [1, *config.c_mults]]
        self.layers = nn.Sequential(
            WNConv1d(in_channels, widths[0], kernel_size=7, padding=3),
            *[EncoderBlock(widths[i], widths[i + 1], stride) for i, stride in enumerate(config.strides)],
            Snake(widths[-1]),
            WNConv1d(widths[-1], 2 * config.latent_dim, kernel_size=3, padding=1),
        )

    def forward(self, audio: Tensor) -> Tensor:
        return self.layers(audio)  # (B, C, T) -> (B, 2 * latent_dim, T / ratio)


class OobleckDecoder(nn.Module):
    def __init__(self, config: VAEConfig, out_channels: int) -> None:
        super().__init__()
        widths = [config.channels * m for m in [1, *config.c_mults]]
        blocks = [
            DecoderBlock(widths[i + 1], widths[i], stride) for i, stride in reversed(list(enumerate(config.strides)))
        ]
        self.layers = nn.Sequential(
            WNConv1d(config.latent_dim, widths[-1], kernel_size=7, padding=3),
            *blocks,
            Snake(widths[0]),
            WNConv1d(widths[0], out_channels, kernel_size=7, padding=3, bias=False),
            *([nn.Tanh()] if config.final_tanh else []),
        )

    def forward(self, latents: Tensor) -> Tensor:
        return self.layers(latents)  # (B, latent_dim, L) -> (B, C, L * ratio)


@dataclass
class VAEOutput:
    reconstruction: Tensor  # (B, C, T)
    latents: Tensor  # (B, latent_dim, L)
    kl: Tensor  # ()


def posterior(params: Tensor) -> tuple[Tensor, Tensor]:
    """The encoder's output split into the posterior's mean and stdev (mean first, as SAO)."""
    mean, scale = params.chunk(2, dim=1)  # (B, latent_dim, L) each
    return mean, F.softplus(scale) + 1e-4


def kl_divergence(mean: Tensor, stdev: Tensor) -> Tensor:
    """KL(N(mean, stdev^2) || N(0, 1)) summed over latent channels, averaged over batch and frames (SAO's scale)."""
    var = stdev.pow(2)
    return (mean.pow(2) + var - var.log() - 1).sum(dim=1).mean()


class AudioVAE(nn.Module):
    def __init__(self, config: VAEConfig, audio_channels: int) -> None:
        super().__init__()
        self.config = config
        self.ratio = config.downsampling_ratio
        self.latent_dim = config.latent_dim
        self.encoder = OobleckEncoder(config, audio_channels)
        self.decoder = OobleckDecoder(config, audio_channels)

    def encode_posterior(
        self, audio: Tensor, chunk_frames: int | None = None, overlap_frames: int = 16
    ) -> tuple[Tensor, Tensor]:
        """Mean and stdev of q(z | audio); the audio is padded with silence to whole latent frames."""
        audio = pad_to_multiple(audio, self.ratio)  # (B, C, T)
        frames = audio.shape[-1] // self.ratio
        if chunk_frames is None or frames <= chunk_frames:
            params = self.encoder(audio)
        else:
            params = map_in_chunks(self.encoder, audio, frames, chunk_frames, overlap_frames, self.ratio, 1)
        return posterior(params)  # (B, latent_dim, L) each

    def encode(
        self,
        audio: Tensor,
        generator: torch.Generator | None = None,
        *,
        sample: bool = True,
        chunk_frames: int | None = None,
        overlap_frames: int = 16,
    ) -> Tensor:
        """Latents of audio (B, C, T) -> (B, latent_dim, ceil(T / ratio)): a posterior sample, or its mean."""
        mean, stdev = self.encode_posterior(audio, chunk_frames, overlap_frames)
        return mean + stdev * gaussian_like(mean, generator) if sample else mean

    def decode(self, latents: Tensor, *, chunk_frames: int | None = None, overlap_frames: int = 16) -> Tensor:
        """Audio of latents (B, latent_dim, L) -> (B, C, L * ratio)."""
        frames = latents.shape[-1]
        if chunk_frames is None or frames <= chunk_frames:
            return self.decoder(latents)
        return map_in_chunks(self.decoder, latents, frames, chunk_frames, overlap_frames, 1, self.ratio)

    def forward(self, audio: Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """One training pass: encode, sample the posterior, decode; with the KL term for the loss."""
        mean, stdev = self.encode_posterior(audio)
        latents = mean + stdev * gaussian_like(mean, generator)
        return VAEOutput(self.decoder(latents), latents, kl_divergence(mean, stdev))
