"""Demo samples during training: fixed prompts at several guidance scales, from the EMA weights, on rank 0."""

from __future__ import annotations

import torch
from torch import Tensor

from model.generate import generate
from model.latent_diffusion import LatentDiffusion
from model.training.config import TrainConfig
from model.training.log import TrainLog
from model.weights import load_strict


def demo(
    model: LatentDiffusion,
    weights: dict[str, Tensor],
    averaged: dict[str, Tensor],
    config: TrainConfig,
    step: int,
    train_log: TrainLog,
) -> None:
    """Every prompt at every scale of demo.cfg_scales, the same seed each time (so demos of one run
    differ only by the weights and the scale)."""
    sampler = sampler_with(model, weights, averaged)
    demo_config = config.demo
    for scale in demo_config.cfg_scales:
        audio = generate(
            sampler,
            demo_config.prompts,
            demo_config.seconds,
            length_s=demo_config.seconds,
            steps=demo_config.steps,
            cfg_scale=scale,
            seed=config.seed,
        )
        train_log.demo(step, demo_config.prompts, audio, model.config.sample_rate, scale)


def sampler_with(model: LatentDiffusion, weights: dict[str, Tensor], averaged: dict[str, Tensor]) -> LatentDiffusion:
    """A plain model holding the EMA weights, for sampling on rank 0 whether the trained one is
    replicated or sharded: built on the meta device (no memory, no random draws) around the
    trained model's frozen VAE and text encoder (whole on every rank, and sampling leaves them
    as they are), then given the whole tensors gathered from the ranks."""
    with torch.device("meta"):
        sampler = LatentDiffusion(model.config, vae=model.vae, text_encoder=model.conditioners.text_encoder)
    shared = {f"vae.{k}" for k in model.vae.state_dict()} | model.text_encoder_keys()
    load_strict(
        sampler, {k: v for k, v in weights.items() if k not in shared} | averaged, "the demo's weights", skip=shared
    )
    return sampler.to(next(model.vae.parameters()).device).eval()
