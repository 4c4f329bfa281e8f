"""Where training checkpoints live and how one is committed.

A checkpoint is a folder `step-00001000/` under the run's `checkpoints/`, committed by a rename
(a temporary folder filled, then renamed into place), so a folder with a step name is always
whole: a crash while saving leaves the previous checkpoint as the latest. Besides the model's
tensors (model/training/checkpointing.py), `training_state.pt` holds what an exact resume needs
besides them: step, scheduler, EMA count, every rank's loader position, RNG; `optimizer.pt` (in
the whole format) the AdamW state as a full state dict keyed by parameter name, so it resumes
under one process, DDP or FSDP2. Both are loaded with `weights_only=True`: tensors and plain
values only.
"""

from __future__ import annotations

import contextlib
import pickle
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import CheckpointError
from model.weights import UnreadableWeights

TRAINING_STATE = "training_state.pt"
OPTIMIZER_STATE = "optimizer.pt"
_STEP_FOLDER = re.compile(r"^step-(\d{8})$")


def step_folder(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:08d}"


def latest_checkpoint(root: str | Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    steps = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_FOLDER.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def prune_checkpoints(root: str | Path, keep: int) -> None:
    """Keep the `keep` newest checkpoints; remove leftovers of interrupted saves."""
    root = Path(root)
    for leftover in [*root.glob(".step-*.tmp"), *root.glob(".step-*.old")]:  # (called with no save in flight)
        shutil.rmtree(leftover, ignore_errors=True)
    steps = sorted(p for p in root.iterdir() if _STEP_FOLDER.match(p.name))
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def resuming_from(folder: Path) -> Iterator[None]:
    """Reading a checkpoint back: a folder whose files were damaged or copied in part, or one
    another soundry version or optimizer wrote, stops with the ways out rather than a trace.

    (Tensors that do not fit the model still raise StateDictError naming them: there the
    cause is the model config, not the folder.)"""
    try:
        yield
    except (UnreadableWeights, OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, IndexError) as error:
        first_sentence = str(error).split("\n")[0].split(". ")[0].rstrip(".")
        detail = first_sentence if isinstance(error, UnreadableWeights) else f"{type(error).__name__}: {first_sentence}"
        raise CheckpointError(
            f"cannot resume from {folder}: {detail}. If that checkpoint is damaged or "
            f"incomplete, remove the folder and the run resumes from the one before it; if another soundry version "
            f"or another model wrote it, train into a new output with init_from: {folder}"
        ) from error


def save_training_state(folder: Path, state: dict[str, Any]) -> None:
    torch.save(state, folder / TRAINING_STATE)


def load_training_state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / TRAINING_STATE, map_location="cpu", weights_only=True)


def _tuples(value: Any) -> Any:
    """random.setstate wants tuples where torch.load may hand back lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
