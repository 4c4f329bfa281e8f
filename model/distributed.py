"""The process group a training run is part of, from the environment torchrun (or Ray Train,
or SLURM through torchrun) sets: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.

One process per GPU (or one CPU process per rank with gloo). Without those variables the
run is a single process and nothing is initialized, so the same loop serves both.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
import torch
import torch.distributed as dist
from torch import nn

@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", timeout_s: float = 1800) -> Distributed:
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    chosen = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return Distributed(rank, world_size, local_rank, chosen)


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: Distributed) -> nn.Module:
    """DDP: a replica of the model on every rank, gradients averaged in backward."""
    if not ctx.active:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def any_rank(flag: bool, ctx: Distributed) -> bool:
    """True on every rank when it is true on any: ranks must stop (or save) together."""
    if not ctx.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(values: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    if not ctx.active:
        return values
    values = values.detach().clone().to(ctx.device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / ctx.world_size


def barrier(ctx: Distributed) -> None:
    if ctx.active:
        dist.barrier()
