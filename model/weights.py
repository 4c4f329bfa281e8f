"""Weight files: reading and writing them, and loading them into a module strictly.

Strictly: every tensor used, every shape checked, errors by name.

stable-audio-tools skips checkpoint keys that do not fit, and a fine-tune then starts from a
half-random model without a word. Here any unexpected, missing or misshapen tensor stops the
load with a message naming it (the file's name for it, and the model's where they differ).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from curation.core.errors import UserError
from curation.core.storage import atomic_local_file

MAX_LISTED = 8


class StateDictError(UserError):
    """Checkpoint tensors that do not fit the model; the message names each one."""


class UnreadableWeights(StateDictError):
    """A weights file that is missing, truncated or not a weights file at all."""


def _same(key: str) -> str:
    return key


def load_strict(
    module: nn.Module,
    tensors: Mapping[str, Tensor],
    source: str,
    *,
    to_module: Callable[[str], str | None] = _same,
    to_file: Callable[[str], str] = _same,
    skip: frozenset[str] | set[str] = frozenset(),
    partial: bool = False,
) -> None:
    """Load `tensors` (named as in the file) into `module`. `to_module`/`to_file` translate names
    (None: no counterpart); `skip`: module keys stored elsewhere; `partial`: the file may cover
    only some of the module (EMA weights), but what it holds must still fit."""
    expected = {k: v for k, v in module.state_dict().items() if k not in skip}
    problems, mapped = [], {}
    for key, tensor in tensors.items():
        name = to_module(key)
        if name is None or name not in expected:
            problems.append(f"unexpected tensor {key}")
        elif tuple(tensor.shape) != tuple(expected[name].shape):
            alias = "" if name == key else f" (model: {name})"
            problems.append(
                f"tensor {key}{alias} has shape {list(tensor.shape)}, the model expects {list(expected[name].shape)}"
            )
        else:
            mapped[name] = tensor
    if not partial:
        problems += [
            f"missing tensor {to_file(name)}"
            for name in expected
            if name not in mapped and to_file(name) not in tensors
        ]
    if problems:
        listed = "; ".join(problems[:MAX_LISTED]) + (
            f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        )
        raise StateDictError(f"{source}: {len(problems)} tensor(s) do not fit the model: {listed}")
    # A model built on the meta device has no storage to copy into: take the loaded tensors as they are.
    assign = any(t.is_meta for t in expected.values())
    module.load_state_dict(mapped, strict=False, assign=assign)


def read_tensors(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a .safetensors file, or of a torch checkpoint (.ckpt/.pt, optionally under
    'state_dict'), read without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableWeights(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors, zip, pickle and EOF errors alike: the bytes are not a whole file
        raise _unreadable(path, error) from error
    data = data.get("state_dict", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise UnreadableWeights(f"{path}: not a mapping of tensor names to tensors")
    return data


def check_readable(path: str | Path) -> None:
    """Raise UnreadableWeights unless `path` looks like a whole weights file, reading only its
    header (safetensors) or zip directory (torch), not its tensors: cheap even for SAO's 4.8 GB.
    (A legacy, pre-zip torch file has no cheap check; its loader reports it.)"""
    path = Path(path)
    if not path.is_file():
        raise UnreadableWeights(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt"):
                return
        with path.open("rb") as f:
            is_zip = f.read(2) == b"PK"
        if is_zip:
            zipfile.ZipFile(path).close()  # reads the central directory, which a truncated file lacks
    except Exception as error:  # as in read_tensors
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: Exception) -> UnreadableWeights:
    return UnreadableWeights(
        f"{path}: cannot be read ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
        "the file is truncated or damaged, or not a weights file: copy it again"
    )


def write_tensors(path: str | Path, tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """A .safetensors file, written atomically."""
    from safetensors.torch import save_file

    with atomic_local_file(str(path), suffix=".safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def read_sharded_tensors(path: str | Path, prefix: str) -> dict[str, Tensor]:
    """The whole tensors under `prefix` ("model.", "ema.") of a sharded checkpoint folder
    (torch.distributed.checkpoint's layout, as model/training/sharded.py writes it), read in this
    one process whatever the number of ranks that wrote it; names without the prefix."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    path = Path(path)
    try:
        reader = dcp.FileSystemReader(str(path))
        entries = reader.read_metadata().state_dict_metadata
        state = {
            name: torch.empty(entry.size, dtype=entry.properties.dtype)
            for name, entry in entries.items()
            if name.startswith(prefix) and isinstance(entry, TensorStorageMetadata)
        }
        dcp.load(state, storage_reader=reader, no_dist=True)
    except Exception as error:  # a missing index, a missing or truncated rank file: the folder is not whole
        raise _unreadable(path, error) from error
    return {name[len(prefix) :]: tensor for name, tensor in state.items()}
