"""Seeded Gaussian noise, drawn where its generator lives and moved to where it is used.

Drawing on the generator's device (often the CPU) makes a seed give the same noise on any
device the model runs on; the copy is tiny next to the model's work. `RowGenerators` gives
each row of a batch its own seeded CPU generator, so a row's noise (and so its sample) does not
depend on which other rows share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class RowGenerators:
    """One CPU generator per batch row, seeded with that row's seed."""

    device = torch.device("cpu")

    def __init__(self, seeds: Sequence[int]) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def randn(self, shape: Sequence[int], dtype: torch.dtype | None = None) -> Tensor:
        """(len(seeds), *shape[1:]): row i drawn from generator i, as a batch of one would draw it."""
        if shape[0] != len(self.generators):
            raise ValueError(f"a batch of {shape[0]} rows needs as many generators, not {len(self.generators)}")
        return torch.stack([torch.randn((1, *shape[1:]), generator=g, dtype=dtype)[0] for g in self.generators])


NoiseSource = torch.Generator | RowGenerators


def gaussian_like(x: Tensor, generator: NoiseSource | None = None) -> Tensor:
    if isinstance(generator, RowGenerators):
        return generator.randn(x.shape, dtype=x.dtype).to(x.device)
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
