"""The streaming training loader: a dataset version (or a list of tar URLs) in, training batches out.

Each loader worker runs an explicit list of small generator stages, webdataset style:

    shard list → shard shuffle → split by node → split by worker → tar samples
      → sample shuffle buffer → skip to the saved position → decode FLAC (or latent.npy)
      → random crop or pad → prompt choice → batch

In an epoch every (rank, worker) reads a disjoint slice of the shuffled shard list and all
of them together read every shard once (the shard shuffle is seeded by seed and epoch only,
so all ranks agree on it). In resampled mode each worker draws shards with replacement,
forever. Randomness per sample (crop, prompt) is seeded by the run seed, the epoch and the
sample's key, so a sample gets the same crop whichever rank or worker reads it.

The position (samples each worker has handed out, and which worker is next) is saved with a
checkpoint: a restore replays each worker's stream up to its position without decoding, so
training continues with exactly the batches an uninterrupted run would have seen. (In
resampled mode draws are independent: a restore starts a fresh stream seeded by the position.)

A corrupt shard (unreadable, truncated) or sample (bad FLAC, bad json, missing member) is
skipped, counted and logged with its shard and key; it never stops training.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import io
import json
import logging
import queue
import random
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import numpy as np
import soundfile
import torch
from pydantic import Field
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from curation.core.strict_model import StrictModel
from curation.core.storage import filesystem
from shards.loader.crop import choose_crop, crop_seconds_start, pad
from shards.manifest import read_manifest, shard_urls
from shards.loader.prompt_choice import PromptWeights, choose_prompt
from curation.core.errors import UserError

log = logging.getLogger("soundry.loader")

Sample = dict[str, Any]
Stage = Callable[[Iterable[Any]], Iterator[Any]]

# What a broken sample raises while decoded: bad json, bad FLAC, bad npy, a missing member.
_BAD_SAMPLE = (KeyError, ValueError, TypeError, RuntimeError, EOFError, soundfile.LibsndfileError)
# What a broken shard raises while read: missing, unreadable, truncated or garbled tar.
_BAD_SHARD = (OSError, EOFError, tarfile.TarError)


class LoaderConfig(StrictModel):
    split: str = Field("train", description="Split of the version to read (ignored for a list of URLs)")
    batch_size: int = Field(8, ge=1, description="Samples per batch (per rank)")
    num_workers: int = Field(2, ge=0, description="Loader workers per rank; 0 reads in the training loop itself")
    worker_kind: Literal["thread", "process"] = Field(
        "thread", description="thread: workers are threads of the training process (FLAC decoding releases the GIL, "
        "and batches need no copy between processes); process: torch DataLoader worker processes",
    )
    sample_size: int = Field(2097152, ge=1, description="Audio samples per example (Stable Audio Open: 2097152, about 47.5 s at 44.1 kHz); shorter clips are padded")
    sample_rate: int | None = Field(None, ge=1000, description="Rate to deliver audio at; empty: the version's rate (clips at another rate are resampled)")
    channels: int = Field(2, ge=1, le=2, description="Channels to deliver: 1 (mono mix) or 2 (mono is duplicated)")
    random_crop: bool = Field(True, description="Crop at a random offset; false crops at the clip's start (evaluation)")
    resampled: bool = Field(False, description="Draw shards with replacement forever (no epochs) instead of one pass per epoch split over ranks and workers")
    shuffle_buffer: int = Field(64, ge=1, description="Samples (compressed) held per worker to shuffle across shards; 1 keeps shard order")
    drop_last: bool = Field(True, description="Drop a worker's last partial batch")
    latents: bool = Field(False, description="Read pre-encoded latent.npy (C, L) instead of audio, cropped in latent frames")
    latent_size: int = Field(1024, ge=1, description="Latent frames per example when latents is on")
    latent_hop: int = Field(2048, ge=1, description="Audio samples per latent frame (the VAE's downsampling), for the crop's seconds_start")
    prompts: PromptWeights = Field(default_factory=PromptWeights, description="How often each kind of prompt is chosen")
    prefetch_factor: int = Field(2, ge=1, description="Batches each worker prepares ahead")
    pin_memory: bool = Field(False, description="Pin batches in page-locked memory (for CUDA copies)")


class LoaderError(UserError):
    """A loader asked for something its source or saved position cannot give; the message says what."""


# ----------------------------------------------------------------------------------------
# Stages. Each takes the stream so far and yields the next; the source takes nothing.

def shard_list(urls: list[str]) -> Callable[[None], Iterator[str]]:
    def stage(_: None) -> Iterator[str]:
        yield from urls
    return stage


def shuffle_shards(seed: int, epoch: int) -> Stage:
    """The same order on every rank and worker: seeded by seed and epoch only."""
    def stage(urls: Iterable[str]) -> Iterator[str]:
        shards = list(urls)
        random.Random(_stable_seed(seed, "shards", epoch)).shuffle(shards)
        yield from shards
    return stage


def split_by_node(rank: int, world_size: int) -> Stage:
    def stage(urls: Iterable[str]) -> Iterator[str]:
        for index, url in enumerate(urls):
            if index % world_size == rank:
                yield url
    return stage


def split_by_worker(worker: int, num_workers: int) -> Stage:
    def stage(urls: Iterable[str]) -> Iterator[str]:
        for index, url in enumerate(urls):
            if index % num_workers == worker:
                yield url
    return stage


def resample_shards(seed: int, rank: int, worker: int, epoch: int, start: int) -> Stage:
    """Shards drawn with replacement forever; a restored position starts a fresh seeded stream."""
    def stage(urls: Iterable[str]) -> Iterator[str]:
        shards = list(urls)
        rng = random.Random(_stable_seed(seed, "resample", rank, worker, epoch, start))
        while shards:
            yield rng.choice(shards)
    return stage


class BrokenShard(Exception):
    """A tar that cannot be read to its end; `partial` is the key of the sample it broke in."""

    def __init__(self, url: str, error: Exception, partial: str | None) -> None:
        where = f" in sample {partial}" if partial else ""
        super().__init__(f"shard {url} is unreadable{where}: {type(error).__name__}: {error}")
        self.partial = partial


def read_tar_samples(url: str) -> Iterator[Sample]:
    """One tar's samples in order: the members of one key grouped into a dict of extension ->
    bytes, in member order. A broken tar raises BrokenShard after the whole samples before it."""
    current: Sample | None = None
    try:
        with _open(url) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                key, _, extension = member.name.rsplit("/", 1)[-1].partition(".")
                # A new key completes the sample before: hand it on before reading on, so a
                # shard truncated here loses nothing that was whole.
                if current is not None and current["__key__"] != key:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__url__": url}
                current[extension.lower()] = archive.extractfile(member).read()
    except _BAD_SHARD as error:
        raise BrokenShard(url, error, current["__key__"] if current else None) from error
    if current is not None:
        yield current


def tar_samples(errors: collections.Counter) -> Stage:
    """Tar streams to samples; a broken shard is skipped from where it breaks, counted and logged."""
    def stage(urls: Iterable[str]) -> Iterator[Sample]:
        for url in urls:
            try:
                yield from read_tar_samples(url)
            except BrokenShard as broken:
                errors["shards"] += 1
                errors["samples"] += 1 if broken.partial else 0
                log.warning("skipped the rest of %s (the sample it broke in is dropped)", broken)
    return stage


def shuffle_samples(size: int, rng: random.Random) -> Stage:
    """A reservoir of `size` samples; each new sample swaps out a random one."""
    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        buffer: list[Sample] = []
        for sample in samples:
            if len(buffer) < size:
                buffer.append(sample)
                continue
            index = rng.randrange(size)
            yield buffer[index]
            buffer[index] = sample
        rng.shuffle(buffer)
        yield from buffer
    return stage


def skip_to(position: int, counted_from: int = 0) -> Stage:
    """Number the samples from counted_from; drop those at or before the saved position (not decoded)."""
    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        for number, sample in enumerate(samples, start=counted_from + 1):
            if number > position:
                sample["__position__"] = number
                yield sample
    return stage


def decode_samples(decode: Callable[[Sample], Sample], errors: collections.Counter) -> Stage:
    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        for sample in samples:
            try:
                yield decode(sample)
            except _BAD_SAMPLE as error:
                errors["samples"] += 1
                log.warning("skipped sample %s in %s: %s: %s", sample["__key__"], sample["__url__"],
                            type(error).__name__, error)
    return stage


def batch_samples(batch_size: int, drop_last: bool, collate: Callable[[list[Sample]], dict[str, Any]]) -> Stage:
    """Batches, each with the stream position of its last sample (what a checkpoint saves)."""
    def stage(samples: Iterable[Sample]) -> Iterator[dict[str, Any]]:
        pending: list[Sample] = []
        for sample in samples:
            pending.append(sample)
            if len(pending) == batch_size:
                yield {**collate(pending), "_last_position": pending[-1]["__position__"]}
                pending = []
        if pending and not drop_last:
            yield {**collate(pending), "_last_position": pending[-1]["__position__"]}
    return stage


# ----------------------------------------------------------------------------------------
# Decoding one sample: audio (or latents) cropped, timing of the crop, the prompt.

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
            audio, mask = torch.empty(self.shape, dtype=torch.float32), torch.empty(self.shape[:2], dtype=torch.bool)
            in_process_worker = get_worker_info() is not None
            self._audio = audio.share_memory_() if in_process_worker else audio
            self._mask = mask.share_memory_() if in_process_worker else mask
        return self._audio[self.filled].numpy(), self._mask[self.filled].numpy()

    def commit(self) -> None:
        self.filled += 1

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled rows: audio as (B, C, T), a view of the interleaved tensor (`.to(device)`
        keeps the layout; the first convolution makes it contiguous on the device), and the mask."""
        audio, mask = self._audio[:self.filled].transpose(1, 2), self._mask[:self.filled]
        self._audio, self._mask, self.filled = None, None, 0
        return audio, mask


def decode_audio(sample: Sample, config: LoaderConfig, rng: random.Random, out: np.ndarray,
                 mask: np.ndarray) -> tuple[int, int]:
    """Decode the crop into out (sample_size, C), zero-padded, and mark its real frames in mask
    (sample_size,); return the crop's offset and rate in the clip."""
    target_rate = config.sample_rate
    with soundfile.SoundFile(io.BytesIO(sample["flac"])) as audio:
        rate, channels = audio.samplerate, audio.channels
        size = config.sample_size if not target_rate or target_rate == rate else -(-config.sample_size * rate // target_rate)
        crop = choose_crop(audio.frames, size, rng, config.random_crop)
        if crop.offset:
            audio.seek(crop.offset)
        direct = rate == (target_rate or rate) and channels == config.channels
        frames = audio.read(crop.length, dtype="float32", always_2d=True, out=out[:crop.length] if direct else None)
    if target_rate and target_rate != rate:
        import soxr

        frames = soxr.resample(frames, rate, target_rate)
    length = min(len(frames), config.sample_size)
    if not direct:
        if config.channels == 1 and channels == 2:
            out[:length, 0] = (frames[:length, 0] + frames[:length, 1]) * 0.5
        else:
            out[:length] = frames[:length, :config.channels]  # mono to stereo broadcasts
    out[length:] = 0
    mask[:length] = True
    mask[length:] = False
    return crop.offset, rate


def decode_latents(sample: Sample, config: LoaderConfig, rng: random.Random) -> tuple[np.ndarray, np.ndarray, int]:
    latent = np.load(io.BytesIO(sample["latent.npy"]), allow_pickle=False)  # (C, L)
    if latent.ndim != 2:
        raise ValueError(f"latent.npy has shape {latent.shape}, expected (channels, frames)")
    crop = choose_crop(latent.shape[1], config.latent_size, rng, config.random_crop)
    padded, mask = pad(latent[:, crop.offset:crop.offset + crop.length].astype(np.float32), config.latent_size)
    return padded, mask, crop.offset


def make_example(sample: Sample, config: LoaderConfig, seed: int, epoch: int, draw: tuple[int, ...],
                 rows: AudioRows | None) -> Sample:
    """One training example; its audio goes to the next of `rows` (latents are small and kept here)."""
    record = json.loads(sample["json"])
    rng = random.Random(_stable_seed(seed, "sample", epoch, *draw, sample["__key__"]))
    clap = np.load(io.BytesIO(sample["clap.npy"]), allow_pickle=False).astype(np.float32) if "clap.npy" in sample else None
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


def collate(examples: list[Sample], rows: AudioRows | None) -> dict[str, Any]:
    """The training batch (DESIGN.md): audio (B, C, T) or latents (B, C, L), padding_mask
    (B, T) true on real frames, prompt, seconds_start and seconds_total (B,) float32, clap
    (B, D) when every example has one, key. default_collate stacks the small parts straight
    into shared memory inside a worker."""
    if rows is None:
        x = {"latents": default_collate([torch.from_numpy(e["latent"]) for e in examples]),
             "padding_mask": default_collate([torch.from_numpy(e["mask"]) for e in examples])}
    else:
        if rows.filled != len(examples):
            raise RuntimeError(f"{rows.filled} audio rows decoded for {len(examples)} examples")
        audio, mask = rows.take()
        x = {"audio": audio, "padding_mask": mask}
    batch = {
        **x,
        "prompt": [e["prompt"] for e in examples],
        "seconds_start": torch.tensor([e["seconds_start"] for e in examples], dtype=torch.float32),
        "seconds_total": torch.tensor([e["seconds_total"] for e in examples], dtype=torch.float32),
        "key": [e["key"] for e in examples],
    }
    if all(e["clap"] is not None for e in examples):
        batch["clap"] = default_collate([torch.from_numpy(e["clap"]) for e in examples])
    return batch


def _open(url: str):
    if url.startswith("pipe:"):
        import webdataset

        return webdataset.gopen(url, "rb")
    fs, path = filesystem(url)
    return fs.open(path, "rb")


def _stable_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


# ----------------------------------------------------------------------------------------
# The dataset a worker iterates, and the loader the trainer holds.

class ShardStream(IterableDataset):
    """One rank's stream; in each DataLoader worker it runs the stage list on its own slice."""

    def __init__(self, urls: list[str], config: LoaderConfig, rank: int, world_size: int, seed: int, epoch: int,
                 positions: dict[int, int], rotation: int, errors: dict[int, dict[str, int]]) -> None:
        self.urls, self.config = urls, config
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self.positions, self.rotation, self.errors = positions, rotation, errors

    def stages(self, worker: int, num_workers: int, errors: collections.Counter) -> list[Stage]:
        config = self.config
        start = self.positions.get(worker, 0)
        if config.resampled:
            # Draws are independent: a restore continues with a fresh stream seeded by the position.
            shards = [resample_shards(self.seed, self.rank, worker, self.epoch, start)]
            draw = (self.rank, worker, start)
            position = skip_to(start, counted_from=start)
        else:
            shards = [shuffle_shards(self.seed, self.epoch), split_by_node(self.rank, self.world_size),
                      split_by_worker(worker, num_workers)]
            draw = ()
            position = skip_to(start)
        buffer_rng = random.Random(_stable_seed(self.seed, "buffer", self.epoch, self.rank, worker, *draw))
        rows = None if config.latents else AudioRows(config.batch_size, config.sample_size, config.channels)
        return [
            shard_list(self.urls),
            *shards,
            tar_samples(errors),
            shuffle_samples(config.shuffle_buffer, buffer_rng),
            position,
            decode_samples(functools.partial(make_example, config=config, seed=self.seed, epoch=self.epoch, draw=draw,
                                             rows=rows), errors),
            batch_samples(config.batch_size, config.drop_last, functools.partial(collate, rows=rows)),
        ]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        return self.run(info.id if info else 0, info.num_workers if info else 1)

    def run(self, physical: int, num_workers: int) -> Iterator[dict[str, Any]]:
        # Rotating the workers makes the loader's round robin start at the worker that was
        # next when the position was saved.
        worker = (physical + self.rotation) % num_workers
        errors = collections.Counter(self.errors.get(worker, {}))
        stream: Any = None
        for stage in self.stages(worker, num_workers, errors):
            stream = stage(stream)
        samples = self.positions.get(worker, 0)
        for batch in stream:
            samples = batch.pop("_last_position")
            batch["_position"] = {"worker": worker, "samples": samples, "errors": dict(errors)}
            yield batch
        # The worker's last word, so that its error counts arrive even when it made no batch.
        yield {"_position": {"worker": worker, "samples": samples, "errors": dict(errors)}, "_end": True}


def thread_round_robin(dataset: ShardStream, workers: int, prefetch: int, pin_memory: bool) -> Iterator[dict[str, Any]]:
    """DataLoader's in-order round robin over worker threads: worker w's k-th batch comes
    after every other active worker's (k-1)-th; each thread runs at most `prefetch` ahead."""
    outboxes = [queue.Queue(maxsize=prefetch) for _ in range(workers)]
    stop = threading.Event()
    pin_memory = pin_memory and torch.cuda.is_available()  # as DataLoader: nothing to pin for without CUDA

    def work(physical: int) -> None:
        try:
            for batch in dataset.run(physical, workers):
                if pin_memory:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                if not _put(outboxes[physical], batch, stop):
                    return
            _put(outboxes[physical], _END_OF_WORKER, stop)
        except BaseException as error:  # handed to the training loop, which raises it
            _put(outboxes[physical], _WorkerFailed(error), stop)

    threads = [threading.Thread(target=work, args=(w,), name=f"soundry-loader-{w}", daemon=True) for w in range(workers)]
    for thread in threads:
        thread.start()
    try:
        active = list(range(workers))
        while active:
            for physical in list(active):
                item = outboxes[physical].get()
                if item is _END_OF_WORKER:
                    active.remove(physical)
                elif isinstance(item, _WorkerFailed):
                    raise RuntimeError(f"loader worker thread {physical} failed") from item.error
                else:
                    yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


_END_OF_WORKER = object()


@dataclasses.dataclass
class _WorkerFailed:
    error: BaseException


def _put(outbox: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put unless the loader was abandoned (the training loop broke out of it)."""
    while not stop.is_set():
        try:
            outbox.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class StreamingLoader:
    """Iterate it for batches: one epoch per iteration (endless when resampled). state_dict()
    is the position to save with a checkpoint; load_state_dict() resumes from it."""

    def __init__(self, urls: list[str], config: LoaderConfig, rank: int, world_size: int, seed: int, epoch: int) -> None:
        if not urls:
            raise LoaderError("no shards to read (an empty split or URL list)")
        if not 0 <= rank < world_size:
            raise LoaderError(f"rank {rank} is outside world_size {world_size}")
        self.urls, self.config = urls, config
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self._positions: dict[int, int] = {}
        self._errors: dict[int, dict[str, int]] = {}
        self._next_worker = 0

    @property
    def workers(self) -> int:
        return max(1, self.config.num_workers)

    @property
    def errors(self) -> dict[str, int]:
        """Corrupt shards and samples skipped so far (as reported with the batches received)."""
        total: collections.Counter[str] = collections.Counter({"shards": 0, "samples": 0})
        for counts in self._errors.values():
            total.update(counts)
        return dict(total)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._positions, self._next_worker = {}, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dataset = ShardStream(self.urls, self.config, self.rank, self.world_size, self.seed, self.epoch,
                              dict(self._positions), self._next_worker, dict(self._errors))
        workers = self.config.num_workers
        if self.config.worker_kind == "thread" and workers:
            loader: Iterable[dict[str, Any]] = thread_round_robin(dataset, workers, self.config.prefetch_factor,
                                                                  self.config.pin_memory)
        else:
            loader = DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=self.config.pin_memory,
                                prefetch_factor=self.config.prefetch_factor if workers else None)
        for batch in loader:
            position = batch.pop("_position")
            self._positions[position["worker"]] = position["samples"]
            self._errors[position["worker"]] = position["errors"]
            self._next_worker = (position["worker"] + 1) % self.workers
            if not batch.pop("_end", False):
                yield batch
        if not self.config.resampled:
            self.set_epoch(self.epoch + 1)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "seed": self.seed, "rank": self.rank, "world_size": self.world_size,
            "num_workers": self.workers, "resampled": self.config.resampled,
            "positions": {str(w): n for w, n in sorted(self._positions.items())},
            "next_worker": self._next_worker,
            "errors": {str(w): dict(c) for w, c in sorted(self._errors.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, mine in (("seed", self.seed), ("rank", self.rank), ("world_size", self.world_size),
                           ("num_workers", self.workers), ("resampled", self.config.resampled)):
            if state[name] != mine:
                raise LoaderError(f"the saved loader position was made with {name}={state[name]!r}, this loader has "
                                  f"{mine!r}; resume with the same {name}")
        self.epoch = state["epoch"]
        self._positions = {int(w): n for w, n in state["positions"].items()}
        self._next_worker = state["next_worker"]
        self._errors = {int(w): dict(c) for w, c in state["errors"].items()}


def resolve_urls(source: str | list[str], config: LoaderConfig) -> tuple[list[str], int | None]:
    """Tar URLs to read, and the version's sample rate (None for a list of URLs)."""
    if isinstance(source, str) and not source.endswith(".tar") and not source.startswith("pipe:"):
        manifest = read_manifest(source)
        if config.split not in manifest["splits"]:
            raise LoaderError(f"{source} has no split {config.split!r} (it has: {', '.join(sorted(manifest['splits']))})")
        if config.latents and "latent.npy" not in manifest["members"]:
            raise LoaderError(f"{source} has no latent.npy members; pre-encode it or read audio (latents: false)")
        return shard_urls(source, manifest, [config.split]), manifest["audio"]["sample_rate"]
    return ([source] if isinstance(source, str) else list(source)), None


def make_loader(source: str | list[str], config: LoaderConfig | None = None, rank: int | None = None,
                world_size: int | None = None, seed: int = 0, epoch: int = 0) -> StreamingLoader:
    """The training loader for a published version (its folder or URL) or a list of tar URLs
    (paths, fsspec URLs, `pipe:` commands). rank and world_size default to torch.distributed's."""
    config = config or LoaderConfig()
    urls, version_rate = resolve_urls(source, config)
    if config.sample_rate is None and version_rate is not None:
        config = config.model_copy(update={"sample_rate": version_rate})
    if rank is None or world_size is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        world_size = torch.distributed.get_world_size() if distributed else 1
    return StreamingLoader(urls, config, rank, world_size, seed, epoch)
