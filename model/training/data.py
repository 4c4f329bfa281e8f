"""The trainers' side of the loader: loader options derived from the model (so data and model
cannot disagree on rate, channels or length), endless batches across epochs, and the
per-step random generator seeded from (seed, step, rank, micro-step)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch import Tensor

from curation.core.errors import UserError
from model.config import ModelConfig
from model.training.config import DataConfig
from shards.loader.balance import check_enough_shards
from shards.loader.batch import TrainingBatch
from shards.loader.config import LoaderConfig
from shards.loader.loader import StreamingLoader
from shards.manifest import read_manifest


class TrainDataError(UserError):
    """Data and model that cannot train together; names the option to change."""


def loader_config(
    data: DataConfig,
    model: ModelConfig,
    sample_size: int | None = None,
    allow_latents: bool = True,
    pin_memory: bool = False,
) -> LoaderConfig:
    """What the loader must deliver for this model: audio at its rate and channels cropped to its
    sample size, or (when the version carries them and the trainer takes them) its latents.
    `pin_memory`: batches in page-locked memory, for asynchronous copies to a GPU."""
    manifest = read_manifest(data.version)
    latents = allow_latents and "latent.npy" in manifest["members"]
    rate = manifest["audio"]["sample_rate"]
    encoded_by = manifest["lineage"].get("latents") if latents else None
    if encoded_by and encoded_by["vae_config"] != model.vae.model_dump(mode="json"):
        raise TrainDataError(
            f"data.version {data.version} holds latents of the VAE {encoded_by['vae']}, whose architecture "
            "differs from the model's vae section; train the model config that VAE belongs to"
        )
    if not data.resampled:  # before any model work: a rank without shards would hang the others
        shards = sum(s["split"] == data.split for s in manifest["shards"])
        check_enough_shards(
            shards, _world_size(), max(1, data.workers), f"data.version {data.version}, split {data.split},"
        )
    if not latents and rate != model.sample_rate:
        raise TrainDataError(
            f"data.version {data.version} holds {rate} Hz audio, the model works at "
            f"{model.sample_rate} Hz; publish a version at the model's rate"
        )
    return LoaderConfig(
        split=data.split,
        batch_size=data.batch_size,
        num_workers=data.workers,
        shuffle_buffer=data.shuffle_buffer,
        resampled=data.resampled,
        prompts=data.prompts,
        sample_size=sample_size or model.sample_size,
        sample_rate=model.sample_rate,
        channels=model.audio_channels,
        latents=latents,
        latent_size=model.latent_length,
        latent_hop=model.vae.downsampling_ratio,
        pin_memory=pin_memory,
    )


def _world_size() -> int:
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return torch.distributed.get_world_size() if distributed else 1


def endless(loader: StreamingLoader) -> Iterator[TrainingBatch]:
    """Batches across epochs (the loader moves to its next epoch when one ends). A loader
    restored at the very end of an epoch yields nothing from it; two empty epochs in a row
    mean the ranks' shards make no full batch (every rank sees the same: equal steps)."""
    empty = 0
    while True:
        produced = False
        for batch in loader:
            produced = True
            yield batch
        empty = 0 if produced else empty + 1
        if empty == 2:
            raise TrainDataError(
                "the training split yields no batch: some rank's loader workers each hold fewer than "
                "data.batch_size samples (or their shards are damaged: see the loader's warnings); lower "
                "data.batch_size or data.workers, or train on fewer ranks"
            )


def to_device(batch: TrainingBatch, device: torch.device) -> TrainingBatch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def step_generator(device: torch.device, seed: int, step: int, rank: int, micro: int) -> torch.Generator:
    return seeded_generator(device, seed, step, rank, micro)


def seeded_generator(device: torch.device, *key: object) -> torch.Generator:
    """A generator seeded from a stable key (the run seed and what the draws are for)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return torch.Generator(device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)
