"""What a training run reports about its speed: samples, latent frames and DiT tokens per second,
the DiT's TFLOP/s and MFU against a given peak, and the GPU memory high-water mark.

FLOPs are the DiT's matrix products counted from its shapes (2 m n k per product, attention's
two batched products included), the way torch's FlopCounterMode counts them (the tests check the
formula against it): a training step costs 3x the forward (backward computes the gradients of
inputs and weights, 2x), the usual convention for MFU. Not counted: the frozen text encoder
and VAE (forward only, outside the trained model) and the recomputation of activation
checkpointing (work done twice, not model FLOPs).
"""

from __future__ import annotations

import time

import torch

from model.conditioners import FOURIER_WEIGHTS
from model.config import ModelConfig

TIMESTEP_FEATURES = 256  # model/dit.py's default


def dit_forward_flops(config: ModelConfig, frames: int) -> int:
    """FLOPs of one example's DiT forward over `frames` latent frames, conditioning projections included."""
    e, c, io = config.dit.embed_dim, config.conditioning.cond_dim, config.vae.latent_dim
    cond = config.conditioning
    numbers = [cid for cid in dict.fromkeys([*cond.cross_attention_ids, *cond.global_ids]) if cid != "prompt"]
    tokens = sum(cond.prompt.max_length if cid == "prompt" else 1 for cid in cond.cross_attention_ids)  # M
    g = c * len(cond.global_ids)
    n = frames + 1  # the prepended global + timestep token
    inner = config.dit.ff_mult * e
    block = (
        2 * n * e * 3 * e  # q, k, v
        + 2 * 2 * n * n * e  # scores and their weighted sum
        + 2 * n * e * e  # out
        + 2 * n * e * e  # cross-attention q
        + 2 * tokens * c * 2 * c  # its k, v
        + 2 * 2 * n * tokens * e  # scores and sum over the condition tokens
        + 2 * n * e * e  # out
        + 2 * n * e * 2 * inner  # gated feed-forward in
        + 2 * n * inner * e  # and out
    )
    outside = (
        2 * 2 * frames * io * io  # 1x1 convs before and after
        + 2 * frames * io * e  # project_in
        + 2 * n * e * io  # project_out (every position, the first then dropped)
        + 2 * 2 * tokens * c * c  # condition tokens' embedding
        + 2 * (TIMESTEP_FEATURES // 2)
        + 2 * TIMESTEP_FEATURES * e
        + 2 * e * e  # timestep
        + (2 * g * e + 2 * e * e if g else 0)  # global condition
        + len(numbers) * 2 * (1 + 2 * FOURIER_WEIGHTS) * c  # the seconds' projections
    )  # (a prompt projection, where the text encoder's width is not cond_dim, is left out: none in the presets)
    return config.dit.depth * block + outside


def dit_train_flops(config: ModelConfig, frames: int, examples: int) -> int:
    """Training FLOPs of a step over `examples` examples of `frames` latent frames: 3x the forward."""
    return 3 * dit_forward_flops(config, frames) * examples


class Throughput:
    """Counts examples over a logging window; `rates()` gives the window's figures and starts the next."""

    def __init__(
        self, config: ModelConfig, frames: int, world_size: int, device: torch.device, peak_tflops: float | None
    ):
        self.config, self.frames, self.world_size, self.device = config, frames, world_size, device
        self.peak_tflops = peak_tflops
        self.examples = 0
        self.started = time.perf_counter()

    def add(self, examples: int) -> None:
        self.examples += examples

    def rates(self) -> dict[str, float]:
        """Figures for every rank together, but TFLOP/s and MFU per device (what the peak is for)."""
        elapsed = time.perf_counter() - self.started
        examples = self.examples * self.world_size
        flops_per_device = dit_train_flops(self.config, self.frames, self.examples)
        values = {
            "samples_per_s": examples / elapsed,
            "latent_frames_per_s": examples * self.frames / elapsed,
            "tokens_per_s": examples * (self.frames + 1) / elapsed,
            "tflops_per_device": flops_per_device / elapsed / 1e12,
        }
        if self.peak_tflops:
            values["mfu"] = values["tflops_per_device"] / self.peak_tflops
        if self.device.type == "cuda":
            values["gpu_memory_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            values["gpu_memory_reserved_gb"] = torch.cuda.max_memory_reserved(self.device) / 2**30
            torch.cuda.reset_peak_memory_stats(self.device)  # each window's own high-water mark
        self.examples, self.started = 0, time.perf_counter()
        return values
