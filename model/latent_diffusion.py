"""The whole text-to-audio model: frozen VAE, conditioners, DiT, and the pieces a trainer needs.

`LatentDiffusion.loss(batch, generator)` is one batch's worth of diffusion: latents
(given, or encoded from audio by the frozen VAE), conditions, CFG dropout, a timestep, noise,
the v-target, the DiT, the MSE. The training loop itself (optimizer, EMA, DDP, logging)
belongs to the trainer; everything random here comes from the generator it passes.

A batch is a `shards.loader.batch.TrainingBatch`; this model does not use its `clap` and `key`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.conditioners import Conditioners, Conditioning
from model.config import ModelConfig
from model.diffusion import Denoiser, cfg_keep, make_denoiser, masked_mse, noised, sample_timesteps, velocity_target
from model.dit import DiT
from model.noise import gaussian_like
from model.sampling import classifier_free_guidance
from model.text_encoder import TextEncoder
from model.vae import AudioVAE
from shards.loader.batch import TrainingBatch


class BatchError(ValueError):
    """A training batch without a field the model needs; names the field."""


def latent_padding_mask(padding_mask: Tensor, frames: int, ratio: int) -> Tensor:
    """A padding mask (B, T) at the audio rate or (B, L) at the latent rate, as (B, L): a latent
    frame counts as real when any of its samples is."""
    if padding_mask.shape[-1] == frames:
        return padding_mask.bool()
    padded = F.pad(padding_mask.bool(), (0, frames * ratio - padding_mask.shape[-1]))
    return padded.view(padded.shape[0], frames, ratio).any(dim=-1)


class LatentDiffusion(nn.Module):
    def __init__(
        self,
        config: ModelConfig,
        vae: AudioVAE | None = None,
        text_encoder: TextEncoder | None = None,
        relative_to: Path | None = None,
    ) -> None:
        """`relative_to`: the checkpoint folder a relative text-encoder path is taken from."""
        super().__init__()
        self.config = config
        self.vae = (vae or AudioVAE(config.vae, config.audio_channels)).requires_grad_(False)
        self.conditioners = Conditioners(config.conditioning, text_encoder, relative_to)
        self.dit = DiT(
            io_channels=config.vae.latent_dim,
            embed_dim=config.dit.embed_dim,
            depth=config.dit.depth,
            num_heads=config.dit.num_heads,
            cond_dim=config.conditioning.cond_dim,
            global_dim=self.conditioners.global_dim,
            ff_mult=config.dit.ff_mult,
        )

    # ------------------------------------------------------------ parameters and state

    def train(self, mode: bool = True) -> LatentDiffusion:
        super().train(mode)
        self.vae.eval()  # frozen here; trained on its own beforehand
        return self

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """What the optimizer (and EMA) should hold: DiT and conditioner weights; not the frozen
        VAE or text encoder."""
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def text_encoder_keys(self) -> set[str]:
        return (
            {f"conditioners.prompt.encoder.{k}" for k in self.conditioners.text_encoder.state_dict()}
            if self.conditioners.text_encoder
            else set()
        )

    def own_state_dict(self) -> dict[str, Tensor]:
        """Every weight but the frozen text encoder's, which is stored on its own (its folder)."""
        skip = self.text_encoder_keys()
        return {k: v for k, v in self.state_dict().items() if k not in skip}

    # ------------------------------------------------------------ training

    def condition(self, batch: TrainingBatch) -> Conditioning:
        for field in ("prompt", "seconds_start", "seconds_total"):
            if field not in batch:
                raise BatchError(f"training batch has no {field!r} field (has: {', '.join(batch)})")
        return self.conditioners(list(batch["prompt"]), batch["seconds_start"], batch["seconds_total"])

    @torch.no_grad()
    def latents(self, batch: TrainingBatch, generator: torch.Generator | None = None) -> Tensor:
        """Pre-encoded latents, or a posterior sample of the frozen VAE for the audio."""
        if "latents" in batch:
            return batch["latents"]
        if "audio" not in batch:
            raise BatchError(f"training batch has neither 'latents' nor 'audio' (has: {', '.join(batch)})")
        return self.vae.encode(batch["audio"], generator)

    def loss(self, batch: TrainingBatch, generator: torch.Generator | None = None) -> Tensor:
        """The diffusion loss of one batch (a scalar to call backward on)."""
        x = self.latents(batch, generator)  # (B, C, L)
        device, b = x.device, x.shape[0]
        cond = self.condition(batch).drop_cross(cfg_keep(b, self.config.diffusion.cfg_dropout, generator, device))
        t = sample_timesteps(b, self.config.diffusion.timesteps, generator, device)  # (B,)
        return self._loss_at(x, cond, t, batch, generator)

    @torch.no_grad()
    def fixed_time_loss(self, batch: TrainingBatch, t: float, generator: torch.Generator | None = None) -> Tensor:
        """The loss of a batch at one diffusion time for every example, every condition kept (no CFG
        dropout): with a fixed batch and generator, a figure comparable from step to step (validation)."""
        x = self.latents(batch, generator)
        times = torch.full((x.shape[0],), float(t), device=x.device)
        return self._loss_at(x, self.condition(batch), times, batch, generator)

    def _loss_at(
        self, x: Tensor, cond: Conditioning, t: Tensor, batch: TrainingBatch, generator: torch.Generator | None
    ) -> Tensor:
        objective = self.config.diffusion.objective
        noise = gaussian_like(x, generator)
        v = self.dit(noised(x, noise, t, objective), t, cond.cross_tokens, cond.global_cond)
        mask = None
        if self.config.diffusion.mask_padding and batch.get("padding_mask") is not None:
            mask = latent_padding_mask(batch["padding_mask"].to(x.device), x.shape[-1], self.vae.ratio)
        return masked_mse(v, velocity_target(x, noise, t, objective), mask)

    # ------------------------------------------------------------ sampling

    def velocity(self, x_t: Tensor, t: Tensor, cond: Conditioning) -> Tensor:
        return self.dit(x_t, t, cond.cross_tokens, cond.global_cond)

    def guided_velocity(self, x_t: Tensor, t: Tensor, cond: Conditioning, cfg_scale: float) -> Tensor:
        """Classifier-free guidance with both branches in one batch of 2B."""
        both = cond.cat(cond.without_cross())
        v_cond, v_uncond = self.velocity(torch.cat([x_t, x_t]), torch.cat([t, t]), both).chunk(2)
        return classifier_free_guidance(v_cond, v_uncond, cfg_scale)

    def denoiser(self, cond: Conditioning, cfg_scale: float = 1.0) -> Denoiser:
        """D(x, sigma) for the samplers; at scale 1 guidance is the conditional model, so one branch runs."""
        if cfg_scale == 1.0:
            return make_denoiser(lambda x_t, t: self.velocity(x_t, t, cond), self.config.diffusion)
        return make_denoiser(lambda x_t, t: self.guided_velocity(x_t, t, cond, cfg_scale), self.config.diffusion)
