"""Conditioners: the prompt and the timing numbers as tokens, and where each goes.

Every conditioner turns its batch field into tokens (B, n, cond_dim) with a mask: the prompt
through a frozen text encoder (model/text_encoder.py), `seconds_start` and `seconds_total`
through number conditioners (clamped, normalized, learned Fourier features, a Linear). The
config lists which go to cross-attention (tokens concatenated in that order; SAO: prompt,
seconds_start, seconds_total = 128 + 1 + 1 tokens) and which are concatenated into the
global condition (SAO: the two seconds embeddings, 2 * 768 wide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from model.config import ConditioningConfig, NumberConfig
from model.text_encoder import TextEncoder, load_text_encoder

FOURIER_WEIGHTS = 128  # SAO's number embedder: 128 learned frequencies -> 1 + 2 * 128 features


@dataclass
class Conditioning:
    """What the DiT is conditioned on for one batch."""

    cross_tokens: Tensor  # (B, M, cond_dim)
    cross_mask: Tensor  # (B, M) bool; carried for callers, not applied by the DiT (as SAO)
    global_cond: Tensor | None  # (B, G)

    def without_cross(self) -> Conditioning:
        """The unconditional branch of classifier-free guidance: every cross-attention token zeroed,
        the global condition (the timing) kept."""
        return Conditioning(torch.zeros_like(self.cross_tokens), self.cross_mask, self.global_cond)

    def drop_cross(self, keep: Tensor) -> Conditioning:
        """Zero the cross-attention tokens of the examples where keep (B,) is False (CFG dropout)."""
        tokens = torch.where(keep[:, None, None], self.cross_tokens, torch.zeros_like(self.cross_tokens))
        return Conditioning(tokens, self.cross_mask, self.global_cond)

    def cat(self, other: Conditioning) -> Conditioning:
        """Both batches in one, for evaluating the conditional and unconditional branches together."""
        global_cond = None if self.global_cond is None else torch.cat([self.global_cond, other.global_cond])
        return Conditioning(
            torch.cat([self.cross_tokens, other.cross_tokens]),
            torch.cat([self.cross_mask, other.cross_mask]),
            global_cond,
        )


class NumberConditioner(nn.Module):
    def __init__(self, config: NumberConfig, cond_dim: int) -> None:
        super().__init__()
        self.min_val, self.max_val = config.min_val, config.max_val
        self.fourier_weights = nn.Parameter(torch.randn(FOURIER_WEIGHTS))
        self.proj = nn.Linear(1 + 2 * FOURIER_WEIGHTS, cond_dim)

    def features(self, values: Tensor) -> Tensor:
        """(B,) -> (B, 257): [v, sin, cos] as SAO, in float32 whatever the weights' dtype (bf16 under
        FSDP2's mixed precision, or a model cast to half): the seconds' embedding must not depend on
        how the run computes."""
        v = (values.float().clamp(self.min_val, self.max_val) - self.min_val) / (self.max_val - self.min_val)
        f = 2 * math.pi * v[:, None] * self.fourier_weights.float()  # (B, 128)
        return torch.cat([v[:, None], f.sin(), f.cos()], dim=-1)

    def forward(self, values: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.proj(self.features(values).to(self.proj.weight.dtype))[:, None]  # (B, 1, cond_dim)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)


class TextConditioner(nn.Module):
    """Prompt tokens from a frozen text encoder, projected to cond_dim when the widths differ."""

    def __init__(self, encoder: TextEncoder, cond_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.proj = nn.Linear(encoder.dim, cond_dim) if encoder.dim != cond_dim else None

    def forward(self, prompts: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        tokens, mask = self.encoder.encode(prompts, device)  # (B, N, D), (B, N)
        if self.proj is not None:
            tokens = self.proj(tokens.to(self.proj.weight.dtype))
        return tokens * mask[..., None], mask


class Conditioners(nn.Module):
    def __init__(
        self, config: ConditioningConfig, text_encoder: TextEncoder | None = None, relative_to: Path | None = None
    ) -> None:
        super().__init__()
        self.config = config
        # Only the conditioners the config routes somewhere: an unused one would hold weights that
        # never get a gradient (DDP, built without find_unused_parameters, stops on them).
        used = set(config.cross_attention_ids) | set(config.global_ids)
        if "prompt" in used:
            self.prompt = TextConditioner(
                text_encoder or load_text_encoder(config.prompt, relative_to), config.cond_dim
            )
        for cid in ("seconds_start", "seconds_total"):
            if cid in used:
                setattr(self, cid, NumberConditioner(getattr(config, cid), config.cond_dim))

    @property
    def global_dim(self) -> int:
        return self.config.cond_dim * len(self.config.global_ids)

    @property
    def text_encoder(self) -> TextEncoder | None:
        return self.prompt.encoder if hasattr(self, "prompt") else None

    def forward(
        self, prompts: list[str], seconds_start: Tensor | list[float], seconds_total: Tensor | list[float]
    ) -> Conditioning:
        device = next(self.parameters()).device
        numbers = {"seconds_start": seconds_start, "seconds_total": seconds_total}
        outputs = {}
        for cid in dict.fromkeys([*self.config.cross_attention_ids, *self.config.global_ids]):
            outputs[cid] = (
                self.prompt(prompts, device)
                if cid == "prompt"
                else getattr(self, cid)(torch.as_tensor(numbers[cid], dtype=torch.float32, device=device))
            )
        cross = [outputs[cid] for cid in self.config.cross_attention_ids]
        global_cond = (
            torch.cat([outputs[cid][0][:, 0] for cid in self.config.global_ids], dim=-1)
            if self.config.global_ids
            else None
        )  # (B, G)
        return Conditioning(
            torch.cat([tokens for tokens, _ in cross], dim=1),
            torch.cat([mask for _, mask in cross], dim=1),
            global_cond,
        )
