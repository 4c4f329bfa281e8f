"""The configuration of `soundry encode` (model/latents/encode.py), apart from the code that
imports torch, so the command line can be built without it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from curation.core.strict_model import StrictModel, execution_field
from shards.config import VERSION_NAME


class EncodeConfig(StrictModel):
    source: str = Field(..., description="Published dataset version whose audio is encoded (folder or URL)")
    vae: str = Field(
        ...,
        description="The VAE: a `soundry train-vae` or `soundry train` checkpoint folder (its EMA weights), "
        "or Stable Audio Open's model or VAE .safetensors",
    )
    model: str | None = Field(
        None,
        description="Architecture of a Stable Audio Open weights file: its model_config.json "
        "(empty: SAO 1.0's); checkpoint folders carry their own",
    )
    root: str = Field(..., description="Folder (or fsspec URL) that holds the new version")
    version: str = Field(
        ..., description="The new version's folder name under root; a published version is never overwritten"
    )
    name: str | None = Field(None, description="Dataset name in the new manifest and card (empty: the source's)")
    description: str | None = Field(None, description="A paragraph for the new card (empty: the source's)")
    latents: Literal["sample", "mean"] = Field(
        "sample",
        description="sample: one draw from the VAE posterior seeded by "
        "(seed, clip id), as stable-audio-tools pre-encodes; mean: the posterior mean",
    )
    dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="Stored precision of latent.npy (float16 halves the bytes; the loader reads both as float32)",
    )
    batch_size: int = Field(
        1,
        ge=1,
        description="Consecutive clips of equal length encoded in one forward pass "
        "(1 is fastest on a CPU; raise it on a GPU)",
    )
    chunk_frames: int | None = Field(
        128,
        ge=48,
        description="Encode in windows of this many latent frames (with 16 "
        "frames of overlap each side, so results match whole-clip encoding to float "
        "precision), bounding activation memory; measured 2x faster on a CPU than whole "
        "30 s clips; empty: whole clips",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the VAE runs (auto: a GPU when there is one)"
    )
    threads: int | None = execution_field(
        None,
        ge=1,
        description="CPU threads of the encoder (fixed, so every engine computes "
        "the same latents); empty: the machine's cores",
    )
    model_workers: int = execution_field(1, ge=1, description="VAE replicas (Ray actors) encoding shards in parallel")
    gpus_per_model_worker: float | None = execution_field(
        None,
        ge=0,
        description="GPUs per replica on Ray (empty: 1 when the cluster has GPUs, else 0)",
    )
    seed: int = Field(0, description="Seeds the posterior draws (with each clip id)")

    @field_validator("version")
    @classmethod
    def _check_version(cls, version: str) -> str:
        if not VERSION_NAME.fullmatch(version):
            raise ValueError(f"{version!r} is not a folder name (letters, digits, . _ -; not starting with . or -)")
        return version
