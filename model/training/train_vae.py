"""`soundry train-vae`: the audio autoencoder on a published version's audio.

One visible loop, as model/training/train.py: setup -> data -> VAE, discriminator, EMA, optimizers ->
resume -> steps -> log, checkpoint, demo. Each step trains the VAE on reconstruction (STFT,
KL) and, after `adversarial_start`, against the discriminator (hinge, feature matching);
then the discriminator on real audio against the detached reconstructions.

The checkpoint is a `kind: vae` folder (model/checkpoint.py) plus the discriminator and the
training state; `soundry train --vae <folder>` and `soundry encode` read its EMA weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model.checkpoint import checkpoint_writer, read_checkpoint_info, write_model_files
from model.config import ModelConfig
from model.training.config import VAETrainConfig
from model.training.data import endless, loader_config, step_generator, to_device
from model.training.distributed import (
    Distributed,
    barrier,
    close_distributed,
    gather,
    init_distributed,
    mean_over_ranks,
    uses_bf16,
    wrap_model,
)
from model.training.ema import EMA
from model.training.log import TrainLog
from model.training.preemption import StopRequest, StopVote
from model.training.resume import check_unchanged, data_identity, resume_folder
from model.training.state import (
    load_training_state,
    prune_checkpoints,
    resuming_from,
    rng_state,
    save_training_state,
    set_rng_state,
    step_folder,
)
from model.training.train import model_config_for
from model.training.vae_losses import MultiScaleSTFTDiscriminator, discriminator_loss, generator_losses, stft_loss
from model.vae import AudioVAE
from model.weights import load_strict, read_tensors, write_tensors
from shards.loader.loader import make_loader

DISCRIMINATOR = "discriminator.safetensors"


class AutoencoderObjective(nn.Module):
    """The VAE's losses as a forward (for DDP). The discriminator is held outside the module
    tree: its weights are not the VAE's to synchronize or update here."""

    def __init__(self, vae: AudioVAE, discriminator: MultiScaleSTFTDiscriminator, config: VAETrainConfig) -> None:
        super().__init__()
        self.vae = vae
        self.critic = [discriminator]
        self.config = config

    def forward(self, audio: Tensor, generator: torch.Generator, adversarial: bool) -> tuple[dict[str, Tensor], Tensor]:
        out = self.vae(audio, generator)
        losses_config = self.config.losses
        if adversarial:
            losses = generator_losses(out, audio, self.critic[0], losses_config)
        else:
            losses = {"stft": stft_loss(out.reconstruction, audio, losses_config.fft_sizes), "kl": out.kl}
            losses["total"] = losses_config.stft_weight * losses["stft"] + losses_config.kl_weight * losses["kl"]
        return losses, out.reconstruction


class DiscriminatorObjective(nn.Module):
    def __init__(self, discriminator: MultiScaleSTFTDiscriminator) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: Tensor, fake: Tensor) -> Tensor:
        return discriminator_loss(self.discriminator, real, fake)


def train_vae(config: VAETrainConfig) -> dict[str, Any]:
    # ---- setup
    ctx = init_distributed(config.device)
    run = Path(config.output)
    checkpoints = run / "checkpoints"
    bf16 = uses_bf16(config.precision, ctx)
    torch.manual_seed(config.seed)
    train_log = TrainLog(run, ctx.is_main)
    model_config = model_config_for(config.model, config.sample_size)

    # ---- data
    data = loader_config(config.data, model_config, sample_size=config.sample_size, allow_latents=False)
    loader = make_loader(config.data.version, data, ctx.rank, ctx.world_size, seed=config.seed)

    # ---- models, EMA, optimizers
    vae = AudioVAE(model_config.vae, model_config.audio_channels).to(ctx.device).train()
    discriminator = MultiScaleSTFTDiscriminator(model_config.audio_channels, config.losses).to(ctx.device).train()
    ema = EMA(vae, config.ema_decay, config.ema_warmup_steps)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.lr, betas=config.betas)
    critic_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=config.discriminator_lr, betas=config.betas)

    # ---- resume
    step = 0
    latest = resume_folder(checkpoints, ctx)
    if latest is not None:
        with resuming_from(latest):
            check_unchanged(latest, config, read_checkpoint_info(latest).metadata, key="train_vae")
            state = load_training_state(latest)
            load_strict(vae, read_tensors(latest / "model.safetensors"), str(latest))
            load_strict(discriminator, read_tensors(latest / DISCRIMINATOR), str(latest))
            ema.load_state_dict({"updates": state["ema_updates"], "shadow": read_tensors(latest / "ema.safetensors")})
            optimizer.load_state_dict(state["optimizer"])
            critic_optimizer.load_state_dict(state["critic_optimizer"])
            loader.load_state_dict(state["loader"][ctx.rank])
            set_rng_state(state["rng"])
            step = int(state["step"])
        train_log.line(f"resumed from {latest} at step {step}")
    autoencoder = wrap_model(AutoencoderObjective(vae, discriminator, config), ctx)
    critic = wrap_model(DiscriminatorObjective(discriminator), ctx)
    train_log.line(
        f"training the VAE of {config.model}: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M parameters, "
        f"discriminator {sum(p.numel() for p in discriminator.parameters()) / 1e6:.2f} M, "
        f"{ctx.world_size} rank(s) ({ctx.device.type}), crops of {config.sample_size} samples"
    )

    # ---- loop
    vote = StopVote(StopRequest(), ctx)
    batches = endless(loader)
    window_started, examples, logged = time.perf_counter(), 0, {}
    while step < config.max_steps:
        audio = to_device(next(batches), ctx.device)["audio"]  # (B, C, T)
        generator = step_generator(ctx.device, config.seed, step, ctx.rank, 0)
        adversarial = step >= config.adversarial_start
        # The autoencoder's step: the discriminator judges but does not learn.
        discriminator.requires_grad_(False)
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
            losses, reconstruction = autoencoder(audio, generator, adversarial)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(vae.parameters(), config.clip_grad_norm or float("inf"))
        optimizer.step()
        ema.update(vae)
        # The discriminator's step, on the reconstructions just made.
        discriminator.requires_grad_(True)
        if adversarial:
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
                critic_loss = critic(audio, reconstruction.detach())
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_optimizer.step()
            losses["discriminator"] = critic_loss
        step += 1
        examples += audio.shape[0]
        for name, value in losses.items():
            logged.setdefault(name, []).append(value.detach().float())

        if step % config.log_every == 0 or step == config.max_steps:
            names = sorted(logged)  # the adversarial losses join mid-run: average what each step had
            means = mean_over_ranks(torch.stack([torch.stack(logged[k]).mean() for k in names]), ctx)
            elapsed = time.perf_counter() - window_started
            train_log.scalars(
                step,
                {
                    **{f"loss_{k}": v.item() for k, v in zip(names, means, strict=True)},
                    "grad_norm": grad_norm.item(),
                    "samples_per_s": examples * ctx.world_size / elapsed,
                },
            )
            window_started, examples, logged = time.perf_counter(), 0, {}
        stopping = vote.poll()  # a stop asked for on any rank, one step ago
        if stopping or step % config.checkpoint_every == 0 or step == config.max_steps:
            _save(
                step_folder(checkpoints, step),
                vae,
                discriminator,
                ema,
                optimizer,
                critic_optimizer,
                loader,
                step,
                config,
                model_config,
                ctx,
            )
            if ctx.is_main:
                prune_checkpoints(checkpoints, config.keep_checkpoints)
            train_log.line(f"checkpoint {step_folder(checkpoints, step)}")
        if ctx.is_main and step == config.max_steps:
            _demo(vae, ema, audio, model_config, step, train_log)
        if stopping:
            train_log.line(
                f"{vote.stop.signal_name or 'stop'} received: checkpoint written at step {step}; "
                "run the same command to resume"
            )
            break
    vote.close()
    summary = {
        "rank": ctx.rank,
        "step": step,
        "stopped_early": step < config.max_steps,
        "checkpoint": str(step_folder(checkpoints, step)),
        "world_size": ctx.world_size,
        "loader_errors": loader.errors,
        **train_log.last,
    }
    train_log.close()
    del autoencoder, critic  # before the process group ends (see close_distributed)
    close_distributed(ctx)
    return summary


def _save(
    folder: Path,
    vae: AudioVAE,
    discriminator: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    critic_optimizer: torch.optim.Optimizer,
    loader: Any,
    step: int,
    config: VAETrainConfig,
    model_config: ModelConfig,
    ctx: Distributed,
) -> None:
    positions = gather(loader.state_dict(), ctx)
    if ctx.is_main:
        with checkpoint_writer(folder) as tmp:
            write_model_files(
                tmp,
                vae,
                model_config,
                ema_state=ema.shadow,
                step=step,
                metadata={
                    "train_vae": config.model_dump(mode="json"),
                    "data_identity": data_identity(config.data.version),
                },
            )
            write_tensors(tmp / DISCRIMINATOR, discriminator.state_dict())
            save_training_state(
                tmp,
                {
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "critic_optimizer": critic_optimizer.state_dict(),
                    "ema_updates": ema.updates,
                    "loader": positions,
                    "rng": rng_state(),
                },
            )
    barrier(ctx)


@torch.no_grad()
def _demo(vae: AudioVAE, ema: EMA, audio: Tensor, model_config: ModelConfig, step: int, train_log: TrainLog) -> None:
    """The last batch's first example, and its reconstruction by the EMA weights."""
    averaged = AudioVAE(vae.config, model_config.audio_channels).to(audio.device).eval()
    averaged.load_state_dict(vae.state_dict())
    ema.copy_to(averaged)
    original = audio[:1].float()
    rebuilt = averaged.decode(averaged.encode(original, sample=False))[..., : original.shape[-1]]
    train_log.demo(
        step,
        ["original", "reconstruction (EMA weights)"],
        torch.cat([original, rebuilt]).cpu(),
        model_config.sample_rate,
    )
