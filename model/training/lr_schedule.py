"""Learning-rate schedules as pure functions of the step: linear warm-up, then constant,
cosine decay to a floor, or the inverse-power decay stable-audio-tools trains SAO with."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from curation.core.strict_model import StrictModel


class ScheduleConfig(StrictModel):
    kind: Literal["constant", "cosine", "inverse"] = Field("inverse", description="decay after warm-up")
    warmup_steps: int = Field(100, ge=0, description="steps of linear warm-up from 0 to the full rate")
    warmup_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="instead of the linear warm-up: factor 1 - warmup_decay ** (step + 1), stable-audio-tools' "
        "InverseLR warm-up (SAO: 0.99, 63% of the rate at step 100)",
    )
    total_steps: int | None = Field(
        None, ge=1, description="cosine: step at which the floor is reached (default: the run's max_steps)"
    )
    min_factor: float = Field(0.1, ge=0, le=1, description="cosine: the floor, as a fraction of the full rate")
    inv_gamma: float = Field(1e6, gt=0, description="inverse: factor = (1 + step / inv_gamma) ** -power")
    power: float = Field(0.5, ge=0, description="inverse: the decay power")


def lr_factor(step: int, config: ScheduleConfig, max_steps: int) -> float:
    """Multiplier of the base learning rate at `step` (0-based)."""
    if config.warmup_decay is not None:
        warm = 1.0 - config.warmup_decay ** (step + 1)
    else:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    if config.kind == "constant":
        return warm
    if config.kind == "inverse":
        return warm * (1.0 + step / config.inv_gamma) ** -config.power
    total = config.total_steps or max_steps
    progress = min(1.0, max(0.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps)))
    return warm * (config.min_factor + (1 - config.min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))
