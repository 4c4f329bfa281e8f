"""Writing a training checkpoint and resuming from one, in either format.

- whole (`checkpoint_format: whole`, the default under DDP): rank 0 writes whole tensors,
  `model.safetensors` and `ema.safetensors` (gathered from the shards under FSDP2), and
  `optimizer.pt`, the AdamW state by parameter name. On resume every rank reads the weights and
  EMA (memory-mapped), but only rank 0 reads the optimizer state and sends each rank its part.
- sharded (the default under FSDP2): every rank writes its own shards of the weights, EMA and
  optimizer state into `sharded/` at the same time (model/training/sharded.py), optionally in
  the background (`async_checkpoints`), and reads back only the pieces it holds, at any world
  size.

Both add `training_state.pt` (step, schedule, EMA count, every rank's loader position, RNG) and
config.json (the model and training config, and the data's identity), and both commit by a
rename: a folder with a step name is whole. `soundry export`, `sample`, `init_from` and `vae`
read either (model/checkpoint.py).
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from model.checkpoint import (
    SHARDED_DIR,
    checkpoint_writer,
    commit_folder,
    is_sharded_checkpoint,
    write_model_config,
    write_model_files,
)
from model.latent_diffusion import LatentDiffusion
from model.training.config import TrainConfig
from model.training.distributed import (
    Distributed,
    barrier,
    full_model_state,
    full_optimizer_state,
    gather,
    load_optimizer_state,
)
from model.training.ema import EMA
from model.training.sharded import load_sharded, save_sharded, save_sharded_async, training_tensors
from model.training.state import (
    OPTIMIZER_STATE,
    load_training_state,
    prune_checkpoints,
    rng_state,
    save_training_state,
    set_rng_state,
    step_folder,
)
from model.weights import read_tensors

log = logging.getLogger("soundry.train")


@dataclass
class Pending:
    """A sharded checkpoint being written in the background: committed once the write is done."""

    future: Future
    tmp: Path
    folder: Path


class CheckpointSaver:
    def __init__(self, config: TrainConfig, checkpoints: Path, ctx: Distributed, metadata: dict[str, Any]) -> None:
        self.config, self.checkpoints, self.ctx, self.metadata = config, checkpoints, ctx, metadata
        fmt = config.checkpoint_format
        self.sharded = fmt == "sharded" or (fmt == "auto" and config.parallel == "fsdp")
        self.asynchronous = self.sharded and config.async_checkpoints
        # The background writer's collectives get a group of their own (new_group is collective: every rank here).
        self._group = dist.new_group(backend="gloo") if self.asynchronous and ctx.active else None
        self.pending: Pending | None = None

    def save(
        self,
        step: int,
        model: LatentDiffusion,
        ema: EMA,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loader: Any,
        *,
        final: bool = False,
        gathered: tuple[dict, dict] | None = None,
    ) -> Path:
        """Write the checkpoint of `step` (collective). `final`: written before the run ends or stops,
        so never in the background. `gathered`: the whole weights and EMA, when the caller has
        them already (demos), for the whole format."""
        folder = step_folder(self.checkpoints, step)
        small = {
            "step": step,
            "scheduler": scheduler.state_dict(),
            "ema_updates": ema.updates,
            "loader": gather(loader.state_dict(), self.ctx),
            "rng": rng_state(),
        }
        if self.sharded:
            self._save_sharded(folder, small, model, ema, optimizer, background=self.asynchronous and not final)
        else:
            weights, averaged = gathered or (full_model_state(model), ema.full_state(keep=self.ctx.is_main))
            optimizer_state = full_optimizer_state(model, optimizer)
            if self.ctx.is_main:
                with checkpoint_writer(folder) as tmp:
                    write_model_files(tmp, model, state=weights, ema_state=averaged, step=step, metadata=self.metadata)
                    torch.save(optimizer_state, tmp / OPTIMIZER_STATE)
                    save_training_state(tmp, small)
                prune_checkpoints(self.checkpoints, self.config.keep_checkpoints)
            barrier(self.ctx)
        return folder

    def _save_sharded(
        self, folder: Path, small: dict[str, Any], model: LatentDiffusion, ema: EMA, optimizer: Any, background: bool
    ) -> None:
        self.wait()  # one checkpoint in flight at a time, committed in step order
        tmp = self.checkpoints / f".{folder.name}.sharded.tmp"  # the same name on every rank
        if self.ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # what a killed save left
            tmp.mkdir(parents=True)
            write_model_config(tmp, model, step=int(small["step"]), metadata=self.metadata)
            save_training_state(tmp, small)
        barrier(self.ctx)
        state = training_tensors(model, ema, optimizer)
        if background:
            self.pending = Pending(save_sharded_async(state, tmp / SHARDED_DIR, self._group), tmp, folder)
            return
        save_sharded(state, tmp / SHARDED_DIR)
        self._commit(tmp, folder)

    def wait(self) -> None:
        """Finish and commit the checkpoint being written in the background, if any (collective)."""
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        pending.future.result()  # on rank 0 done means every rank's part and the index are written
        self._commit(pending.tmp, pending.folder)

    def _commit(self, tmp: Path, folder: Path) -> None:
        if self.ctx.is_main:
            commit_folder(tmp, folder)
            prune_checkpoints(self.checkpoints, self.config.keep_checkpoints)
        barrier(self.ctx)


def load_whole_weights(folder: Path) -> dict[str, torch.Tensor] | None:
    """The whole-format weights to load before the model is wrapped; None for a sharded folder
    (its weights are read after wrapping, each rank its own shards)."""
    return None if is_sharded_checkpoint(folder) else read_tensors(folder / "model.safetensors")


def restore(
    folder: Path,
    model: LatentDiffusion,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: Any,
    ctx: Distributed,
) -> int:
    """Everything but whole-format weights (loaded before wrapping): EMA, optimizer, schedule, data, RNG."""
    state = load_training_state(folder)
    if is_sharded_checkpoint(folder):
        load_sharded(folder / SHARDED_DIR, model, ema, optimizer)
    else:
        ema.load_state_dict({"updates": state["ema_updates"], "shadow": read_tensors(folder / "ema.safetensors")})
        # Only rank 0 reads the optimizer state (the largest file); the others get their parts from it.
        whole = torch.load(folder / OPTIMIZER_STATE, map_location="cpu", weights_only=True) if ctx.is_main else {}
        load_optimizer_state(model, optimizer, whole, ctx)
    ema.updates = int(state["ema_updates"])
    scheduler.load_state_dict(state["scheduler"])
    positions = state["loader"]
    same_layout = len(positions) == ctx.world_size and positions[ctx.rank]["num_workers"] == loader.workers
    if same_layout:
        loader.load_state_dict(positions[ctx.rank])
    else:
        # Each rank (and worker) reads its own part of the data, so positions saved by another number of
        # ranks or workers do not apply here: the data go on from the start of the next epoch.
        loader.set_epoch(max(position["epoch"] for position in positions) + 1)
        log.warning(
            "the checkpoint %s was written by %d rank(s) with %d loader worker(s) each, this run has %d and %d: the "
            "data continue from the next epoch, not from where they stopped",
            folder,
            len(positions),
            positions[0]["num_workers"],
            ctx.world_size,
            loader.workers,
        )
    set_rng_state(state["rng"])
    return int(state["step"])
