"""Exponential moving average of a model's weights: the weights that sample best.

The average lives in float32 beside the trained model (whatever precision autocast
uses for the forward pass) and is updated after every optimizer step. A warm-up makes
the early average follow the model closely instead of remembering its random start.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup_steps: int = 0) -> None:
        self.decay = decay
        self.warmup_steps = warmup_steps
        self.updates = 0
        self.shadow = {name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad}

    def current_decay(self) -> float:
        if self.warmup_steps <= 0:
            return self.decay
        # a linear ramp from 0 (the average is the model) to `decay` over the warm-up
        return self.decay * min(1.0, self.updates / self.warmup_steps)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (a separate copy used for sampling)."""
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.dtype))

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "warmup_steps": self.warmup_steps, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, object]) -> None:
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the model: {sorted(missing)[:5]}")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
