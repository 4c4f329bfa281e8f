"""CLAP behind one small interface: embed audio windows, embed texts.

Backends register by name in BACKENDS and are imported only when chosen:
- `laion`: the laion-clap package's own model code with LAION's original checkpoints
  (630k-audioset-best, music_audioset_epoch_15_esc_90.14, the fusion variants ...) and a
  RoBERTa tokenizer, both from local paths;
- `hf`: transformers' ClapModel from a local HF-format folder (e.g. larger_clap_music);
- `random`: the same architectures with seeded random weights and a stand-in tokenizer
  trained on the spot; for tests and the offline demo, chosen explicitly, printed as such.

Every backend takes 10 s windows of 48 kHz mono audio and returns L2-normalized vectors,
so the rest of the stage never knows which one ran. Nothing here reaches a model hub.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field, model_validator

from curation.core.errors import UserError
from curation.core.extras import needs_extra
from curation.core.strict_model import StrictModel

if TYPE_CHECKING:
    import numpy as np
    import torch

SAMPLE_RATE = 48_000  # CLAP's audio rate
WINDOW_SECONDS = 10  # HTSAT's input: 1024 frames of 480 samples
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECONDS
CONTEXT_TOKENS = 77  # LAION CLAP's text length (CLIP's)

Architecture = Literal["HTSAT-tiny", "HTSAT-base", "HTSAT-mini"]


class ClapError(UserError):
    """A CLAP model that cannot be loaded or used; the message names the file or option."""


class ClapConfig(StrictModel):
    backend: Literal["laion", "hf", "random"] = Field(
        description="CLAP implementation: laion (laion-clap with LAION's checkpoint, see clap.checkpoint), "
        "hf (transformers ClapModel from clap.model_dir) or random (random weights: labels mean nothing; tests and "
        "demos)"
    )
    architecture: Architecture = Field(
        "HTSAT-tiny",
        description="laion and random: audio tower; HTSAT-tiny for 630k-*best checkpoints, HTSAT-base for "
        "music_audioset_epoch_15_esc_90.14 and music_speech_*; HTSAT-mini is a small test model",
    )
    fusion: bool = Field(
        False, description="laion and random: the feature-fusion variant (630k-fusion-best, 630k-audioset-fusion-best)"
    )
    checkpoint: str | None = Field(None, description="laion: the checkpoint file (.pt, .ckpt or .safetensors)")
    tokenizer: str | None = Field(
        None,
        description="laion: folder with the RoBERTa tokenizer files (vocab.json and merges.txt, or tokenizer.json)",
    )
    model_dir: str | None = Field(
        None,
        description="hf: folder of an HF-format CLAP model (config.json, weights, tokenizer, preprocessor_config.json)",
    )
    allow_pickle: bool = Field(
        False,
        description="laion: load a .pt that torch refuses with weights_only=True; unpickling runs code from the "
        "file, so only for checkpoints from a source you trust",
    )
    seed: int = Field(
        0, description="random: seed of the random weights (the same seed gives the same model everywhere)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs; auto: a GPU when there is one"
    )
    precision: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="Weights' type; auto: float16 on a GPU, float32 on the CPU (spectrograms are always float32)",
    )
    threads: int = Field(
        0,
        ge=0,
        description="CPU threads of the model (fixed, so every engine computes the same vectors); 0: one per core",
    )
    audio_batch_size: int = Field(
        16, ge=1, description="10 s windows per audio forward pass (the last one is padded to it)"
    )
    text_batch_size: int = Field(64, ge=1, description="Captions per text forward pass")

    @model_validator(mode="after")
    def _check(self) -> ClapConfig:
        needed = {"laion": ("checkpoint", "tokenizer"), "hf": ("model_dir",), "random": ()}[self.backend]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"backend {self.backend} needs clap.{' and clap.'.join(missing)}")
        ignored = [
            name for name in ("checkpoint", "tokenizer", "model_dir") if name not in needed and getattr(self, name)
        ]
        if ignored:
            # A checkpoint named but not used would label with other weights than the user thinks.
            raise ValueError(f"clap.{ignored[0]} is set but backend {self.backend} does not use it")
        return self


@dataclass(frozen=True)
class ClapIdentity:
    """What a set of embeddings was made with: the cache key and the manifest's record."""

    backend: str
    model_id: str  # names the cache folder: same id, same vectors
    checkpoint_sha256: str | None  # null for random weights
    random_weights: bool
    description: str  # one line for people: printed at the start of a run

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Clap(Protocol):
    identity: ClapIdentity
    dim: int
    device: torch.device  # where the model runs; the top-K search runs there too
    dtype: torch.dtype

    def embed_audio(self, windows: np.ndarray) -> np.ndarray:
        """(N, WINDOW_SAMPLES) int16 or float32 mono at 48 kHz -> (N, dim) float32, L2-normalized."""

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """N captions -> (N, dim) float32, L2-normalized."""


# name -> "module:function" building a Clap from a ClapConfig; imported only when chosen.
BACKENDS = {
    "laion": "labeling.clap.laion:load_laion_clap",
    "hf": "labeling.clap.hf:load_hf_clap",
    "random": "labeling.clap.random_weights:load_random_clap",
}
IDENTITIES = {
    "laion": "labeling.clap.laion:laion_identity",
    "hf": "labeling.clap.hf:hf_identity",
    "random": "labeling.clap.random_weights:random_identity",
}


@functools.lru_cache(maxsize=1)
def load_clap(config: ClapConfig) -> Clap:
    """The model for `config`, built once per process: the stage's steps (captions, then
    clips) and an engine's threads share it. Inference leaves it unchanged."""
    with _needs_backend_extra(config):
        return _resolve(BACKENDS[config.backend])(config)


def clap_identity(config: ClapConfig) -> ClapIdentity:
    """The model's identity without building it (hashes the weight files)."""
    with _needs_backend_extra(config):
        return _resolve(IDENTITIES[config.backend])(config)


def _needs_backend_extra(config: ClapConfig) -> contextlib.AbstractContextManager[None]:
    if config.backend == "laion":
        return needs_extra("clap", "the laion CLAP backend", "laion_clap", "transformers")
    return needs_extra("label", f"the {config.backend} CLAP backend", "transformers")


def _resolve(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def file_sha256(path: str) -> str:
    if not os.path.isfile(path):
        raise ClapError(f"{path}: no such file")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
