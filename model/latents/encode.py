"""`soundry encode`: a published version's audio through a frozen VAE, published as a new
version whose samples also carry `latent.npy` (README, "Sample format"), so the DiT trains on
latents without running the encoder at every step.

A clip's latents are its whole audio encoded, padded with silence to whole latent frames:
the posterior's mean, or one draw from the posterior (what stable-audio-tools pre-encodes)
from a generator seeded by (seed, clip id), so every engine, worker and rerun writes the same
latents. Consecutive clips of equal length are encoded as one batch (a shard's batches are
the same on every run); each clip's draw has its own generator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from curation.core.errors import UserError
from model.checkpoint import SHARDED_DIR, checkpoint_tensors, is_sharded_checkpoint, load_vae, read_checkpoint_info
from model.config import VAEConfig
from model.latents.config import EncodeConfig
from model.sao.checkpoint import load_sao_vae, sao_vae_format
from model.vae import AudioVAE
from model.weights import check_readable
from shards.derive import DerivedShard, write_derived_shard
from shards.loader.tars import Sample
from shards.sample import npy_bytes


class EncodeError(UserError):
    """Data and VAE that cannot be encoded together, or a VAE that cannot be loaded; names what to change."""


@dataclasses.dataclass(frozen=True)
class VAEFormat:
    """What a VAE takes and makes, known from its config alone."""

    sample_rate: int
    channels: int
    vae: VAEConfig

    def lineage(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "latent_dim": self.vae.latent_dim,
            "downsampling_ratio": self.vae.downsampling_ratio,
            "vae_config": self.vae.model_dump(mode="json"),
        }


def vae_format(config: EncodeConfig) -> VAEFormat:
    """The VAE's format from its checkpoint's config, or from the model_config.json of a SAO file."""
    path = Path(config.vae)
    if path.is_dir():
        info = read_checkpoint_info(path)
        return VAEFormat(info.config.sample_rate, info.config.audio_channels, info.config.vae)
    if not path.is_file():
        raise EncodeError(f"vae {config.vae}: no such checkpoint folder or weights file")
    vae, channels, rate = sao_vae_format(config.model)
    return VAEFormat(rate, channels, vae)


def load_encoder(config: EncodeConfig, device: torch.device) -> tuple[AudioVAE, VAEFormat]:
    """The VAE in eval mode on `device` (a checkpoint's EMA weights, or a SAO file's, strictly)."""
    form, path = vae_format(config), Path(config.vae)
    vae = (
        load_vae(path, use_ema=True, device=device)
        if path.is_dir()
        else load_sao_vae(path, config.model, device=device)
    )
    return vae.eval(), form


def check_vae_weights(config: EncodeConfig) -> None:
    """Refuse damaged VAE weights before a version is claimed: the model workers load them only
    later, and a claimed version records them."""
    path = Path(config.vae)
    if path.is_dir() and is_sharded_checkpoint(path):
        checkpoint_tensors(path, ema=True)  # reads the shards' index and pieces: a damaged one is named
        return
    files = (
        [path / "model.safetensors", *[p for p in (path / "ema.safetensors",) if p.is_file()]]
        if path.is_dir()
        else [path]
    )
    for file in files:
        check_readable(file)


def vae_weights_sha256(config: EncodeConfig) -> str:
    """The hash of the weights the latents come from (a folder's EMA file when it has one; every
    file of a sharded checkpoint's sharded/ folder, in name order)."""
    path = Path(config.vae)
    if path.is_dir() and is_sharded_checkpoint(path):
        files = sorted(p for p in (path / SHARDED_DIR).iterdir() if p.is_file())
    elif path.is_dir():
        files = [path / "ema.safetensors" if (path / "ema.safetensors").is_file() else path / "model.safetensors"]
    else:
        files = [path]
    digests = []
    for file in files:
        with file.open("rb") as f:
            digests.append(hashlib.file_digest(f, "sha256"))
    if len(digests) == 1:
        return digests[0].hexdigest()
    return hashlib.sha256(b"".join(d.digest() for d in digests)).hexdigest()


def encoder_device(config: EncodeConfig) -> torch.device:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise EncodeError("device is cuda but torch sees no GPU here; use --device auto or cpu")
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


class LatentEncoder:
    """Loaded once per model worker; called with one shard, writes its derived shard."""

    def __init__(self, config: EncodeConfig) -> None:
        self.config = config
        self.device = encoder_device(config)
        if self.device.type == "cpu":
            torch.set_num_threads(config.threads or os.cpu_count() or 1)
        self.vae, self.format = load_encoder(config, self.device)

    def __call__(self, shard: DerivedShard) -> dict[str, Any]:
        return write_derived_shard(shard, self.add_latents).to_dict()

    def add_latents(self, samples: Iterator[Sample]) -> Iterator[tuple[Sample, list[tuple[str, bytes]]]]:
        batch: list[tuple[Sample, np.ndarray]] = []
        for sample in samples:
            audio = self._audio(sample)
            if batch and (len(batch) == self.config.batch_size or batch[0][1].shape != audio.shape):
                yield from self._encode(batch)
                batch = []
            batch.append((sample, audio))
        if batch:
            yield from self._encode(batch)

    def _audio(self, sample: Sample) -> np.ndarray:
        key = sample["__key__"]
        try:
            audio, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32", always_2d=True)
        except (KeyError, soundfile.LibsndfileError) as error:
            raise EncodeError(
                f"{sample['__url__']}: sample {key} has no readable flac ({error}); "
                "run `soundry versions verify` on the source"
            ) from None
        want = self.format
        if rate != want.sample_rate or audio.shape[1] != want.channels:
            raise EncodeError(
                f"{sample['__url__']}: sample {key} is {rate} Hz, {audio.shape[1]} channel(s); the VAE "
                f"takes {want.sample_rate} Hz, {want.channels} channel(s): encode a version curated at the VAE's format"
            )
        return audio.T  # (C, T)

    @torch.inference_mode()
    def _encode(self, batch: list[tuple[Sample, np.ndarray]]) -> Iterator[tuple[Sample, list[tuple[str, bytes]]]]:
        audio = torch.from_numpy(np.stack([a for _, a in batch])).to(self.device)  # (B, C, T)
        mean, stdev = self.vae.encode_posterior(audio, self.config.chunk_frames)  # (B, latent_dim, L) each
        for row, (sample, _) in enumerate(batch):
            latent = mean[row]
            if self.config.latents == "sample":
                noise = torch.randn(latent.shape, generator=clip_generator(self.config.seed, sample["__key__"]))
                latent = latent + stdev[row] * noise.to(self.device)
            yield sample, [("latent.npy", npy_bytes(latent.float().cpu().numpy().astype(self.config.dtype)))]


def clip_generator(seed: int, clip_id: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
