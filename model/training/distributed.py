"""The process group a training run is part of, from the environment torchrun (or Ray Train,
or SLURM through torchrun) sets: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.

One process per GPU (or one CPU process per rank with gloo). Without those variables the
run is a single process and nothing is initialized, so the same loop serves both.

How the ranks hold the model (`parallel`): DDP keeps a whole replica on every rank and
averages gradients; FSDP2 (`fully_shard`) splits every trained weight, its gradient and its
optimizer state over the ranks, gathering a block's weights only while the block runs, for
models whose training state does not fit one device. Checkpoints hold whole tensors either
way (full_model_state and full_optimizer_state gather them to rank 0; load_optimizer_state hands each rank its part),
so a run can resume under the other scheme or on another number of ranks.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from model.training.torch_support import require_fsdp2

require_fsdp2()  # before the imports below, so an old torch gets a message, not an ImportError
from torch.distributed.checkpoint.state_dict import (  # noqa: E402
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor  # noqa: E402

Parallel = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this run started the process group (not Ray Train or a caller), so it ends it

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
    starts = world_size > 1 and not dist.is_initialized()
    if starts:
        dist.init_process_group(
            "nccl" if use_cuda else "gloo",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return Distributed(rank, world_size, local_rank, chosen, owns_group=starts)


def uses_bf16(precision: str, ctx: Distributed) -> bool:
    """A run's precision option ("auto", "bf16", "fp32") as a decision: auto means bf16 on a GPU."""
    return precision == "bf16" or (precision == "auto" and ctx.device.type == "cuda")


def close_distributed(ctx: Distributed) -> None:
    """End the process group if this run started it; one its caller set up stays for the caller.

    Call it after dropping the wrapped model. A DDP reducer that is the last holder of a gloo
    group ends it from its destructor holding the GIL, joining gloo threads that may be waiting
    for the GIL to free a finished collective's tensors: a hang at exit, seen under load. Dropped
    first (collected here), the reducer lets go while the group is registered, and
    destroy_process_group ends the group without the GIL."""
    gc.collect()
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(
    model: nn.Module, ctx: Distributed, parallel: Parallel = "ddp", blocks: Iterable[nn.Module] = (), bf16: bool = False
) -> nn.Module:
    """DDP: a replica of the model on every rank, gradients averaged in backward. FSDP2: each of
    `blocks` is sharded as a unit (its weights gathered for its forward and backward, then freed),
    then `model` itself, which takes the remaining trained weights; `model`'s forward is where
    those are gathered. Build the optimizer and EMA after wrapping: FSDP2 replaces the parameters.
    `bf16`: the run computes in bf16 (autocast)."""
    if not ctx.active:
        return model
    if parallel == "ddp":
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(ctx.device.type, (ctx.world_size,))
    # A bf16 run (GPUs, by default) gathers weights in bf16 (half the traffic) and reduces gradients
    # in fp32; the sharded master weights and the optimizer state stay fp32. An fp32 run (the CPU,
    # by default) gathers and reduces fp32.
    block_policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    )
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=block_policy)
    # The root's inputs (the batch: latents, the loss target) keep their precision, as under DDP. Its
    # weights are gathered in fp32 even in a bf16 run: they are few (embeddings and projections around
    # the blocks), and among them are the timestep's and the seconds' Fourier weights, whose features
    # must be float32 (model/dit.py): a bf16 copy of the weights would round them before any autocast.
    root_policy = MixedPrecisionPolicy(reduce_dtype=block_policy.reduce_dtype, cast_forward_inputs=False)
    # Frozen weights (the VAE, the text encoder) have no gradient or optimizer state to shard:
    # every rank keeps a whole copy, used outside the sharded forward (the VAE encodes the batch).
    frozen = {p for p in model.parameters() if not p.requires_grad}
    return fully_shard(model, mesh=mesh, mp_policy=root_policy, ignored_params=frozen or None)


def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Around one micro-step's forward and backward: whether its gradients are averaged over the
    ranks (the last micro-step of an accumulation) or only summed locally (the others)."""
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2: a switch rather than a context
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if sync or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def clip_gradients(parameters: Iterable[Tensor], max_norm: float | None) -> Tensor:
    """Clip to `max_norm` (None: only measure) the norm of all gradients together, plain or
    sharded (DTensor: each rank's part of the norm is reduced over the ranks); the norm, whole."""
    norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_norm or float("inf"))
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def is_sharded(tensor: Tensor) -> bool:
    return isinstance(tensor, DTensor)


_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_model_state(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict as whole tensors on the CPU of rank 0, gathered from every rank's
    shards; empty on the other ranks. Every rank must call it. `model` is the unwrapped module,
    so the names are the same under DDP, FSDP2 and one process."""
    return get_model_state_dict(model, options=_FULL)


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict keyed by parameter name (not by position), whole tensors on
    rank 0's CPU, empty elsewhere; every rank must call it."""
    return get_optimizer_state_dict(model, optimizer, options=_FULL)


def load_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], ctx: Distributed
) -> None:
    """A full optimizer state dict (from full_optimizer_state) into an optimizer over plain or sharded
    parameters. With several ranks, rank 0's copy is sent out and each rank keeps its part (the
    other ranks need not hold it; and in torch 2.13 every rank passing the whole dict fails on
    unevenly sharded tensors)."""
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=ctx.active)
    set_optimizer_state_dict(model, optimizer, state if ctx.is_main or not ctx.active else {}, options=options)


def gather(obj: Any, ctx: Distributed) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (small picklable values)."""
    if not ctx.active:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def mean_over_ranks(values: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    if not ctx.active:
        return values
    values = values.detach().clone().to(ctx.device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / ctx.world_size


def barrier(ctx: Distributed) -> None:
    if ctx.active:
        dist.barrier()
