"""Exponential moving average of a model's weights: the weights that sample best.

The average lives in float32 beside the trained model (whatever precision autocast
uses for the forward pass) and is updated after every optimizer step. A warm-up makes
the early average follow the model closely instead of remembering its random start.

Under FSDP2 a parameter is a DTensor holding this rank's shard; its average is then a
DTensor of the same layout, so each rank averages only its own part (no communication
per step, 1/N of the memory) and `full_state` gathers the whole tensors for a checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.training.torch_support import require_fsdp2

require_fsdp2()  # before the imports below, so an old torch gets a message, not an ImportError
from torch.distributed.tensor import DTensor, distribute_tensor  # noqa: E402


def _local(tensor: Tensor) -> Tensor:
    """This rank's part of a sharded tensor (a view: writing to it writes the shard), or the tensor."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


class EMA:
    def __init__(
        self, model: nn.Module, decay: float = 0.9999, warmup_steps: int = 0, warmup_power: float | None = None
    ) -> None:
        self.decay = decay
        self.warmup_steps = warmup_steps
        self.warmup_power = warmup_power
        self.updates = 0
        self.shadow = {name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad}

    def current_decay(self) -> float:
        if self.warmup_power is not None:
            # ema_pytorch's warm-up, which stable-audio-tools trains SAO with (0.75: 0.968 after 100 updates,
            # 0.999 after 10,000)
            return min(self.decay, max(0.0, 1.0 - (1 + self.updates) ** -self.warmup_power))
        if self.warmup_steps <= 0:
            return self.decay
        # a linear ramp from 0 (the average is the model) to `decay` over the warm-up
        return self.decay * min(1.0, self.updates / self.warmup_steps)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for name, p in model.named_parameters():
            if name in self.shadow:
                _local(self.shadow[name]).lerp_(_local(p.detach()).float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (a separate copy used for sampling)."""
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.dtype))

    def full_state(self, keep: bool = True) -> dict[str, Tensor]:
        """The averaged weights as whole tensors on the CPU. When they are sharded every rank must
        call this (each tensor is gathered from all ranks); `keep` False: take part, keep nothing."""
        full = {}
        for name, value in self.shadow.items():
            whole = value.full_tensor() if isinstance(value, DTensor) else value
            if keep:
                full[name] = whole.cpu()
        return full

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "warmup_steps": self.warmup_steps, "updates": self.updates, "shadow": self.shadow}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, object]) -> None:
        """`shadow` holds whole tensors (as full_state gives and checkpoints store); a sharded
        average takes this rank's part of each."""
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the model: {sorted(missing)[:5]}")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            target = self.shadow[name]
            if isinstance(target, DTensor):
                # Every rank has the whole tensor: each cuts out its own shard, no communication.
                value = distribute_tensor(
                    value.to(target.device), target.device_mesh, target.placements, src_data_rank=None
                )
            _local(target).copy_(_local(value))
