"""A sample decoded to a training example (cropped audio or latents, timing, prompt); examples collated."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import numpy as np
import soundfile
import torch
from torch.utils.data import default_collate, get_worker_info

from shards.loader.batch import TrainingBatch
from shards.loader.config import LoaderConfig
from shards.loader.crop import choose_crop, crop_seconds_start, pad
from shards.loader.prompts import choose_prompt
from shards.loader.seed import stable_seed
from shards.loader.tars import Sample

# One decoded example: key, latent (or None: its audio is in an AudioRows row), mask, seconds_start,
# seconds_total, prompt, clap (or None), __position__.
Example = dict[str, Any]


class AudioRows:
    """Where a worker decodes audio to: the rows of one (B, T, C) float32 tensor and of its
    (B, T) padding mask, allocated in shared memory inside a loader worker process. FLAC is
    decoded straight into its row (interleaved, as the decoder writes it): a batch is built
    with no copy, and reaches the training process with none (copies and fresh pages cost as
    much as decoding a 30 s clip)."""

    def __init__(self, batch_size: int, frames: int, channels: int) -> None:
        self.shape = (batch_size, frames, channels)
        self._audio: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self.filled = 0

    def next_row(self) -> tuple[np.ndarray, np.ndarray]:
        """The next example's (T, C) audio row and (T,) mask row."""
        if self._audio is None:
            audio = torch.empty(self.shape, dtype=torch.float32)
            mask = torch.empty(self.shape[:2], dtype=torch.bool)
            in_process_worker = get_worker_info() is not None
            self._audio = audio.share_memory_() if in_process_worker else audio
            self._mask = mask.share_memory_() if in_process_worker else mask
        return self._audio[self.filled].numpy(), self._mask[self.filled].numpy()

    def commit(self) -> None:
        self.filled += 1

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled rows: audio as (B, C, T), a view of the interleaved tensor (`.to(device)`
        keeps the layout; the first convolution makes it contiguous on the device), and the mask."""
        audio, mask = self._audio[: self.filled].transpose(1, 2), self._mask[: self.filled]
        self._audio, self._mask, self.filled = None, None, 0
        return audio, mask


def decode_audio(
    sample: Sample, config: LoaderConfig, rng: random.Random, out: np.ndarray, mask: np.ndarray
) -> tuple[int, int]:
    """Decode the crop into out (sample_size, C), zero-padded, and mark its real frames in mask
    (sample_size,); return the crop's offset and rate in the clip."""
    target_rate = config.sample_rate
    with soundfile.SoundFile(io.BytesIO(sample["flac"])) as audio:
        rate, channels = audio.samplerate, audio.channels
        resampled = target_rate and target_rate != rate
        size = -(-config.sample_size * rate // target_rate) if resampled else config.sample_size
        crop = choose_crop(audio.frames, size, rng, config.random_crop)
        if crop.offset:
            audio.seek(crop.offset)
        direct = rate == (target_rate or rate) and channels == config.channels
        frames = audio.read(crop.length, dtype="float32", always_2d=True, out=out[: crop.length] if direct else None)
    if resampled:
        import soxr  # only a rate change needs it

        frames = soxr.resample(frames, rate, target_rate)
    length = min(len(frames), config.sample_size)
    if not direct:
        if config.channels == 1 and channels == 2:
            out[:length, 0] = (frames[:length, 0] + frames[:length, 1]) * 0.5
        else:
            out[:length] = frames[:length, : config.channels]  # mono to stereo broadcasts
    out[length:] = 0
    mask[:length] = True
    mask[length:] = False
    return crop.offset, rate


def decode_latents(sample: Sample, config: LoaderConfig, rng: random.Random) -> tuple[np.ndarray, np.ndarray, int]:
    """The crop of latent.npy, zero-padded to latent_size frames, its (latent_size,) mask, and its offset."""
    latent = np.load(io.BytesIO(sample["latent.npy"]), allow_pickle=False)  # (C, L)
    if latent.ndim != 2:
        raise ValueError(f"latent.npy has shape {latent.shape}, expected (channels, frames)")
    crop = choose_crop(latent.shape[1], config.latent_size, rng, config.random_crop)
    padded, mask = pad(latent[:, crop.offset : crop.offset + crop.length].astype(np.float32), config.latent_size)
    return padded, mask, crop.offset


def make_example(
    sample: Sample, config: LoaderConfig, seed: int, epoch: int, draw: tuple[int, ...], rows: AudioRows | None
) -> Example:
    """One training example; its audio goes to the next of `rows` (latents are small and kept here)."""
    record = json.loads(sample["json"])
    rng = random.Random(stable_seed(seed, "sample", epoch, *draw, sample["__key__"]))
    clap = None
    if "clap.npy" in sample:
        clap = np.load(io.BytesIO(sample["clap.npy"]), allow_pickle=False).astype(np.float32)
    latent = None
    if config.latents:
        latent, mask, offset = decode_latents(sample, config, rng)
        frame_rate = record["sample_rate"] / config.latent_hop
    else:
        mask = None
        offset, frame_rate = decode_audio(sample, config, rng, *rows.next_row())
        rows.commit()  # only now: a sample that failed to decode leaves its row to the next
    return {
        "key": sample["__key__"],
        "latent": latent,
        "mask": mask,
        "seconds_start": crop_seconds_start(record["start_s"], offset, frame_rate),
        "seconds_total": record["seconds_total"],
        "prompt": choose_prompt(record, config.prompts, rng),
        "clap": clap,
        "__position__": sample["__position__"],
    }


def collate(examples: list[Example], rows: AudioRows | None) -> TrainingBatch:
    """The examples as one TrainingBatch (`clap` only when every example has one). default_collate
    stacks the small parts straight into shared memory inside a worker process."""
    if rows is None:
        signal = {"latents": default_collate([torch.from_numpy(e["latent"]) for e in examples])}
        mask = default_collate([torch.from_numpy(e["mask"]) for e in examples])
    else:
        if rows.filled != len(examples):
            raise RuntimeError(f"{rows.filled} audio rows decoded for {len(examples)} examples")
        audio, mask = rows.take()
        signal = {"audio": audio}
    batch = TrainingBatch(
        **signal,
        padding_mask=mask,
        prompt=[e["prompt"] for e in examples],
        seconds_start=torch.tensor([e["seconds_start"] for e in examples], dtype=torch.float32),
        seconds_total=torch.tensor([e["seconds_total"] for e in examples], dtype=torch.float32),
        key=[e["key"] for e in examples],
    )
    if all(e["clap"] is not None for e in examples):
        batch["clap"] = default_collate([torch.from_numpy(e["clap"]) for e in examples])
    return batch
