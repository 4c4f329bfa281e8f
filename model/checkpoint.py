"""Our checkpoint folder: the resolved config and the weights, committed in one rename.

    <folder>/
      config.json          {"format": "soundry-checkpoint", "format_version": 1,
                            "kind": "diffusion" | "vae", "weights": "random" | "trained" | "stable-audio-open",
                            "step": int, "model": <ModelConfig>, ...the trainer's metadata}
      model.safetensors    every weight but a text encoder's (diffusion: vae.*, conditioners.*, dit.*;
                           vae: encoder.*, decoder.*, SAO's autoencoder layout)
      ema.safetensors      optional: EMA weights, a subset of model.safetensors' names
      sharded/             instead of the two files above, in a sharded checkpoint: the weights, EMA and
                           optimizer state as every rank wrote its shards (torch.distributed.checkpoint);
                           read here as whole tensors by one process
      text_encoder/        only for a random stand-in text encoder (transformers layout); a real
                           one stays where config.json's model.conditioning.prompt.path points
      ...                  the trainer's own files: optimizer.pt, scheduler.pt, rng.pt, data state

Writing goes to a hidden sibling folder that is renamed into place when everything is in it,
so a folder that exists is complete. A trainer adds its state in the same commit:

    with checkpoint_writer(run / f"step-{step:08d}") as tmp:
        write_model_files(tmp, model, ema_state=ema.state_dict(), weights="trained", step=step,
                          metadata={"train": train_config.model_dump(mode="json")})
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from curation.core.durable import sync_folder, sync_tree
from curation.core.errors import UserError
from model.config import ModelConfig
from model.latent_diffusion import LatentDiffusion
from model.vae import AudioVAE
from model.weights import StateDictError, load_strict, read_sharded_tensors, read_tensors, write_tensors

FORMAT = "soundry-checkpoint"
FORMAT_VERSION = 1
TEXT_ENCODER_DIR = "text_encoder"
SHARDED_DIR = "sharded"


class CheckpointError(UserError):
    """A folder that is not a usable checkpoint; the message says which file and why."""


@dataclass(frozen=True)
class CheckpointInfo:
    folder: Path
    kind: str  # "diffusion" | "vae"
    weights: str  # "random" | "trained" | "stable-audio-open"
    step: int
    config: ModelConfig
    metadata: dict[str, Any]
    has_ema: bool


@contextlib.contextmanager
def checkpoint_writer(folder: str | Path) -> Iterator[Path]:
    """A temporary folder to fill; on success it becomes `folder` (replacing an older one)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        commit_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit_folder(tmp: Path, folder: Path) -> None:
    """Rename a filled temporary folder into place, replacing an older `folder` (moved aside first,
    so that at every moment one whole folder has the name, or none). Every file is on the disk
    before the rename, so a committed folder is never empty after a crash, and the rename is
    before anyone prunes the checkpoints older than this one."""
    sync_tree(tmp)
    if folder.exists():
        old = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.old"
        folder.rename(old)
        tmp.rename(folder)
        sync_folder(folder.parent)
        shutil.rmtree(old)
    else:
        tmp.rename(folder)
        sync_folder(folder.parent)


def write_model_files(
    folder: Path,
    model: LatentDiffusion | AudioVAE,
    config: ModelConfig | None = None,
    *,
    ema_state: Mapping[str, Tensor] | None = None,
    weights: str = "trained",
    step: int = 0,
    metadata: Mapping[str, Any] | None = None,
    state: Mapping[str, Tensor] | None = None,
) -> None:
    """config.json, model.safetensors, ema.safetensors and a random text encoder into `folder`.
    `config` is needed for a bare AudioVAE (its sample rate and channels live in the ModelConfig).
    `state`: the model's whole state dict when its own parameters are shards (FSDP2), gathered by
    the caller; by default the model's state dict."""
    if isinstance(model, LatentDiffusion):
        skip = model.text_encoder_keys()
        state = model.own_state_dict() if state is None else {k: v for k, v in state.items() if k not in skip}
    else:
        state = model.state_dict() if state is None else state
    if ema_state is not None:
        unknown = sorted(set(ema_state) - set(state))
        if unknown:
            raise StateDictError(f"EMA weights name tensors the model does not have: {', '.join(unknown[:5])}")
        write_tensors(folder / "ema.safetensors", ema_state)
    write_tensors(folder / "model.safetensors", state)
    write_model_config(folder, model, config, weights=weights, step=step, metadata=metadata)


def write_model_config(
    folder: Path,
    model: LatentDiffusion | AudioVAE,
    config: ModelConfig | None = None,
    *,
    weights: str = "trained",
    step: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """config.json and a random text encoder (what a folder holds besides its tensors): with
    write_model_files' tensors a whole checkpoint, with a sharded/ folder a sharded one."""
    if isinstance(model, LatentDiffusion):
        kind, config = "diffusion", config or model.config
        encoder = model.conditioners.text_encoder
        if encoder is not None:
            if encoder.is_random:
                # A random stand-in is reproduced only by its saved copy, so it travels with the weights.
                encoder.save(folder / TEXT_ENCODER_DIR)
                path = TEXT_ENCODER_DIR
            else:
                # A real encoder stays where it is; an absolute path keeps pointing there from the checkpoint.
                path = str(encoder.source)
            config = config.with_text_encoder_path(path)
    else:
        if config is None:
            raise ValueError("write_model_files: a bare AudioVAE needs the ModelConfig it belongs to")
        kind = "vae"
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "weights": weights,
        "step": step,
        "model": config.model_dump(mode="json"),
        **(metadata or {}),
    }
    (folder / "config.json").write_text(json.dumps(document, indent=2) + "\n")


def save_checkpoint(
    folder: str | Path,
    model: LatentDiffusion | AudioVAE,
    config: ModelConfig | None = None,
    *,
    ema_state: Mapping[str, Tensor] | None = None,
    weights: str = "trained",
    step: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    with checkpoint_writer(folder) as tmp:
        write_model_files(tmp, model, config, ema_state=ema_state, weights=weights, step=step, metadata=metadata)
    return Path(folder)


def read_checkpoint_info(folder: str | Path) -> CheckpointInfo:
    folder = Path(folder)
    path = folder / "config.json"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: not a checkpoint folder (no config.json)") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable ({error})") from None
    if document.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a soundry checkpoint (format {document.get('format')!r}); "
            "for Stable Audio Open files use `soundry model-init --sao-config ... --sao-weights ...`"
        )
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {document['format_version']} is newer than this soundry reads ({FORMAT_VERSION})"
        )
    try:
        config = ModelConfig.model_validate(document["model"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid model config ({error})") from None
    if document.get("kind") not in ("diffusion", "vae"):
        raise CheckpointError(f"{path}: kind {document.get('kind')!r} is neither 'diffusion' nor 'vae'")
    metadata = {
        k: v for k, v in document.items() if k not in ("format", "format_version", "kind", "weights", "step", "model")
    }
    return CheckpointInfo(
        folder,
        document["kind"],
        document.get("weights", "trained"),
        int(document.get("step", 0)),
        config,
        metadata,
        (folder / "ema.safetensors").is_file() or is_sharded_checkpoint(folder),
    )


def is_sharded_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / SHARDED_DIR).is_dir()


def checkpoint_tensors(folder: str | Path, ema: bool = False) -> tuple[dict[str, Tensor], str]:
    """The whole weights (or EMA weights) of a checkpoint folder, and the name of where they came
    from: its safetensors file, or its sharded/ folder read in this one process."""
    folder = Path(folder)
    if is_sharded_checkpoint(folder):
        return read_sharded_tensors(folder / SHARDED_DIR, "ema." if ema else "model."), str(folder / SHARDED_DIR)
    path = folder / ("ema.safetensors" if ema else "model.safetensors")
    return read_tensors(path), str(path)


def load_checkpoint(
    folder: str | Path, *, use_ema: bool = True, device: str | torch.device = "cpu", text_encoder: str | None = None
) -> LatentDiffusion | AudioVAE:
    """The model a checkpoint folder holds, its weights loaded strictly (EMA weights over them
    when present and asked for). `text_encoder`: a local folder to read the prompt encoder from
    instead of the one config.json names (which may be another machine's path)."""
    info = read_checkpoint_info(folder)
    if info.kind == "vae":
        model = AudioVAE(info.config.vae, info.config.audio_channels)
        skip: set[str] = set()
    else:
        config = info.config if text_encoder is None else info.config.with_text_encoder_path(text_encoder)
        model = LatentDiffusion(config, relative_to=info.folder)
        skip = model.text_encoder_keys()
    load_strict(model, *checkpoint_tensors(info.folder), skip=skip)
    if use_ema and info.has_ema:
        load_strict(model, *checkpoint_tensors(info.folder, ema=True), skip=skip, partial=True)
    return model.to(device)


def load_vae(folder: str | Path, *, use_ema: bool = True, device: str | torch.device = "cpu") -> AudioVAE:
    """The VAE of a checkpoint of either kind (a diffusion checkpoint carries its frozen VAE)."""
    model = load_checkpoint(folder, use_ema=use_ema, device=device)
    return model if isinstance(model, AudioVAE) else model.vae
