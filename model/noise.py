"""Seeded Gaussian noise, drawn where its generator lives and moved to where it is used.

Drawing on the generator's device (often the CPU) makes a seed give the same noise on any
device the model runs on; the copy is tiny next to the model's work.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
