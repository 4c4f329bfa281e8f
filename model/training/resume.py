"""Which checkpoint a run resumes from, and whether it may: the same command resumes, a changed one does not.

Rank 0 alone looks for the newest checkpoint and tells the others its name, so ranks never
resume from different steps (on shared storage a checkpoint being committed, or a stale
directory listing, can show ranks different folders).

A checkpoint holds the run's config. Resuming under another value of a field that shapes what
is trained (the data, its split, batch or shuffle buffer, the model, optimizer, schedule, EMA,
seed...) would apply the saved optimizer state and loader positions to another run, silently;
it is refused, naming the fields. Execution fields (TrainConfig's `execution_field`s: devices,
workers, precision, parallelism, cadence of logs, checkpoints, demos and validation, memory and
speed options, max_steps) may change. A dataset version that moved is the same data when its
manifest is the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch.distributed as dist
from pydantic import BaseModel

from curation.core.errors import UserError
from model.training.distributed import Distributed
from model.training.state import latest_checkpoint
from shards.manifest import read_manifest

SHOWN = 6


class ResumeError(UserError):
    """A resume under a changed config; names the fields."""


def resume_folder(checkpoints: Path, ctx: Distributed) -> Path | None:
    """Rank 0's newest complete checkpoint, on every rank (collective)."""
    chosen = latest_checkpoint(checkpoints) if ctx.is_main else None
    if ctx.active:
        box = [None if chosen is None else chosen.name]
        dist.broadcast_object_list(box, src=0)
        return None if box[0] is None else Path(checkpoints) / box[0]
    return chosen


def data_identity(version: str) -> str:
    """What the data is, wherever the version lies: the hash of its manifest."""
    return hashlib.sha256(json.dumps(read_manifest(version), sort_keys=True).encode()).hexdigest()


# Fields that change what a finished run made, so they are part of its identity (`soundry run`
# trains again when they change), but that a resume may change: training on to more steps.
TRAIN_ON = {"max_steps"}


def check_unchanged(folder: Path, config: BaseModel, metadata: dict[str, Any], key: str = "train") -> None:
    """Raise ResumeError when `config` differs from the config the checkpoint holds (its
    config.json's `key`) in anything but execution fields."""
    old = metadata.get(key)
    if old is None:
        return  # a folder made by model-init or an older trainer: nothing to compare
    new = config.model_dump(mode="json")
    changes = list(_changes(type(config), old, new, ""))
    if "data.version" in changes and metadata.get("data_identity") == data_identity(config.data.version):
        changes.remove("data.version")  # moved, not changed
    if not changes:
        return
    shown = "; ".join(f"{name}: {_value(old, name)} -> {_value(new, name)}" for name in changes[:SHOWN])
    more = f"; and {len(changes) - SHOWN} more" if len(changes) > SHOWN else ""
    raise ResumeError(
        f"cannot resume from {folder}: the run was started with other values of {', '.join(changes)} "
        f"({shown}{more}). Only execution fields (device, workers, precision, parallel, cadence of logs, "
        "checkpoints, demos and validation, memory and speed options, max_steps) may change on a resume: set "
        f"these back, or train into a new output with init_from: {folder} (its weights, a fresh optimizer and "
        "data order)"
    )


def _changes(model: type[BaseModel], old: dict[str, Any], new: dict[str, Any], prefix: str):
    for name, field in model.model_fields.items():
        if (field.json_schema_extra or {}).get("execution") or name not in old:
            continue  # an execution field, or one the checkpoint's soundry did not have
        if prefix + name in TRAIN_ON:
            continue
        nested = (
            field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        )
        if nested is not None and isinstance(old[name], dict):
            yield from _changes(nested, old[name], new[name], f"{prefix}{name}.")
        elif old[name] != new[name]:
            yield prefix + name


def _value(tree: dict[str, Any], dotted: str) -> str:
    for part in dotted.split("."):
        tree = tree[part]
    return json.dumps(tree)
