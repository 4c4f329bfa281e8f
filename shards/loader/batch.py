"""The training batch: what the loader's collate returns and every trainer and model step takes."""

# No `from __future__ import annotations`: TypedDict reads NotRequired only from evaluated annotations.
from typing import TypedDict

from torch import Tensor
from typing_extensions import NotRequired  # typing has it from Python 3.11


class TrainingBatch(TypedDict):
    """B examples. A loader reading audio gives `audio`, one reading pre-encoded latent.npy
    gives `latents`; `clap` is there only when every example carries a CLAP embedding."""

    audio: NotRequired[Tensor]  # (B, C, T) float32
    latents: NotRequired[Tensor]  # (B, latent_dim, L) float32 (SAO: latent_dim 64)
    padding_mask: Tensor  # (B, T) or (B, L) bool, True on real audio
    prompt: list[str]
    seconds_start: Tensor  # (B,) float32: where the crop starts in its source (s)
    seconds_total: Tensor  # (B,) float32: the source's duration (s)
    clap: NotRequired[Tensor]  # (B, D) float32, the clips' CLAP audio embeddings
    key: list[str]  # the samples' clip ids
