"""The validation loss: the diffusion loss on held-out data at fixed diffusion times with fixed noise.

Every `validation.every` steps the first `validation.batches` batches of the version's
`validation.split` (clip starts, no shuffling) are scored at each time in `validation.times`,
every condition kept (no CFG dropout), with noise (and VAE posterior samples, on audio) from
generators seeded by (seed, batch, time): the same examples, times and noise at every step, so
the figures move only with the weights. Every rank reads and scores the same batches (a few, so
the cost is small): the figure does not depend on the number of ranks, and no rank waits on
another's data.
"""

from __future__ import annotations

from typing import Any

import torch

from model.training.config import TrainConfig
from model.training.data import seeded_generator, to_device
from shards.loader.config import LoaderConfig
from shards.loader.loader import make_loader
from shards.manifest import read_manifest


class Validation:
    def __init__(self, config: TrainConfig, train_loader: LoaderConfig, device: torch.device, say: Any) -> None:
        self.config, self.device = config, device
        self.every = config.validation.every
        self.loader = None
        if not self.every:
            return
        split = config.validation.split
        splits = read_manifest(config.data.version).get("splits", {})
        if split not in splits:
            say(
                f"validation off: {config.data.version} has no {split!r} split (it has {', '.join(sorted(splits))}); "
                "publish the version with one (splits.fractions) or set validation.split"
            )
            self.every = 0
            return
        fixed = train_loader.model_copy(
            update={
                "split": split,
                "random_crop": False,
                "shuffle_buffer": 1,
                "num_workers": 0,
                "drop_last": False,
                "resampled": False,
            }
        )
        self.loader = make_loader(config.data.version, fixed, rank=0, world_size=1, seed=config.seed)

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    @torch.no_grad()
    def run(self, objective: torch.nn.Module, bf16: bool) -> dict[str, float]:
        """`objective(batch, generator, t)`: the wrapped model's fixed-time loss (every rank calls it
        the same number of times: under DDP and FSDP2 a forward is collective)."""
        times = self.config.validation.times
        totals = torch.zeros(len(times), device=self.device)
        self.loader.set_epoch(0)
        batches = 0
        for index, batch in zip(range(self.config.validation.batches), self.loader, strict=False):
            batch = to_device(batch, self.device)
            for k, t in enumerate(times):
                generator = seeded_generator(self.device, self.config.seed, "validation", index, k)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                    totals[k] += objective(batch, generator, t).float()
            batches += 1
        if not batches:
            return {}
        losses = (totals / batches).tolist()
        return {
            "valid_loss": sum(losses) / len(losses),
            **{f"valid_loss_t{t:g}": v for t, v in zip(times, losses, strict=True)},
        }
