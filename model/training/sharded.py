"""Sharded checkpoints: the trained state (weights, EMA, AdamW moments) written by every rank in
parallel, its own shards only, with torch.distributed.checkpoint (DCP).

Under FSDP2 each rank holds 1/N of every trained weight, its EMA and its optimizer state as
DTensor shards; DCP writes each rank's shards to its own files and rank 0 a `.metadata` index
naming where every piece of every tensor lies. Reading goes the other way at any world size:
each rank reads only the pieces its own shards need (2 ranks -> 1, 1 -> 2, 8 -> 64), and one
process without a process group reads whole tensors (model/weights.py:read_sharded_tensors, for
`soundry export`, `sample`, `init_from`). Replicated tensors (the frozen VAE; every tensor under
DDP or in one process) are written once, the writes spread over the ranks.

The state is one tree: {"model": weights by name, "ema": EMA averages by name, "optimizer":
AdamW state by parameter name}, the frozen text encoder left out (a real T5 stays where its
path points; a random stand-in travels as a folder beside).
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from model.latent_diffusion import LatentDiffusion
from model.training.ema import EMA


def training_tensors(model: LatentDiffusion, ema: EMA, optimizer: Any) -> dict[str, Any]:
    """The state tree of this rank: its shards (FSDP2) or whole tensors (DDP, one process).
    The optimizer's state is created if it is empty (before the first step), so that a load has
    tensors to read into."""
    skip = model.text_encoder_keys()
    weights = {k: v for k, v in get_model_state_dict(model).items() if k not in skip}
    return {"model": weights, "ema": ema.shadow, "optimizer": get_optimizer_state_dict(model, optimizer)}


def save_sharded(state: dict[str, Any], path: Path) -> None:
    """Every rank writes its part of `state` under `path`; rank 0 adds the index. Collective."""
    dcp.save(state, checkpoint_id=str(path))


def save_sharded_async(state: dict[str, Any], path: Path, group: dist.ProcessGroup | None) -> Future:
    """Copy `state` to CPU memory now and write it in a background thread; the future completes
    when this rank's part is written (and on rank 0, the index: then every rank's part is).
    `group`: a process group of its own (gloo) for the background thread's collectives, so they
    never interleave with the training loop's."""
    return dcp.async_save(state, checkpoint_id=str(path), process_group=group)


def load_sharded(path: Path, model: LatentDiffusion, ema: EMA, optimizer: Any) -> None:
    """Read a sharded checkpoint into the model, EMA and optimizer as they are laid out now (any
    world size, sharded or not): each rank reads the pieces its tensors cover."""
    state = training_tensors(model, ema, optimizer)
    dcp.load(state, checkpoint_id=str(path))
    # The text encoder's weights are not in the tree: the load leaves them as they are.
    set_model_state_dict(model, state["model"], options=StateDictOptions(strict=False))
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
