"""The streaming training loader: a dataset version (or a list of tar URLs) in, training batches out.

Each loader worker runs an explicit list of small generator stages, webdataset style:

    shard list → shard shuffle → split by node → split by worker → tar samples
      → sample shuffle buffer → skip to the saved position → decode FLAC (or latent.npy)
      → random crop or pad → prompt choice → batch

In an epoch every (rank, worker) reads a disjoint slice of the shuffled shard list and all
of them together read every shard once (the shard shuffle is seeded by seed and epoch only,
so all ranks agree on it). The slices are dealt by sample count (the manifest's), and every
rank takes the same number of batches per epoch, so ranks stepping in lockstep see the data
evenly (balance.py); a split with fewer shards than ranks x workers is refused. In resampled
mode each worker draws shards with replacement, forever. Randomness per sample (crop,
prompt) is seeded by the run seed, the epoch and the sample's key, so a sample gets the same
crop whichever rank or worker reads it.

The position (samples each worker has handed out, and which worker is next) is saved with a
checkpoint: a restore replays each worker's stream up to its position without decoding, so
training continues with exactly the batches an uninterrupted run would have seen. (In
resampled mode draws are independent: a restore starts a fresh stream seeded by the position.)

A corrupt shard (unreadable, truncated, fewer samples than its manifest count) or sample (bad
FLAC, bad json, missing member) is skipped, counted and logged with its shard and key; it
never stops training. The counts are part of the position: a restore does not count again
what it replays.

Here: the loader the trainer holds. Beside it: `stages.py` (the stages), `tars.py` (reading a
tar), `examples.py` (decoding, cropping, collating), `prompts.py` (prompt choice), `stream.py`
(a rank's workers, threads or processes), `batch.py` (the TrainingBatch every batch is).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader

from curation.core.errors import UserError
from curation.core.storage import join
from shards.loader.balance import TooFewShards, check_enough_shards, steps_per_epoch
from shards.loader.batch import TrainingBatch
from shards.loader.config import LoaderConfig
from shards.loader.stages import epoch_order
from shards.loader.stream import ShardStream, WorkerBatch, thread_round_robin
from shards.manifest import read_manifest, shard_urls

# What users import (README, the dataset card): the loader and its options from one place.
__all__ = ["LoaderConfig", "LoaderError", "StreamingLoader", "TooFewShards", "make_loader", "resolve_urls"]


class LoaderError(UserError):
    """A loader asked for something its source or saved position cannot give; the message says what."""


class StreamingLoader:
    """Iterate it for batches: one epoch per iteration (endless when resampled). state_dict()
    is the position to save with a checkpoint; load_state_dict() resumes from it."""

    def __init__(
        self,
        urls: list[str],
        config: LoaderConfig,
        rank: int,
        world_size: int,
        seed: int,
        epoch: int,
        counts: dict[str, int] | None = None,
    ) -> None:
        """`counts`: samples per URL (a version's manifest gives them), to deal shards by size,
        equalize the ranks' steps and catch shards that end early; None for a bare list of tars."""
        if not urls:
            raise LoaderError("no shards to read (an empty split or URL list)")
        if not 0 <= rank < world_size:
            raise LoaderError(f"rank {rank} is outside world_size {world_size}")
        self.urls, self.config, self.counts = urls, config, counts
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        if not config.resampled:
            where = f"the {config.split} split" if counts is not None else "the list of tars"
            check_enough_shards(len(urls), world_size, self.workers, where)
        self._positions: dict[int, int] = {}
        self._errors: dict[int, dict[str, int]] = {}
        self._next_worker = 0
        self._batches = 0  # handed out in this epoch

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
        self._positions, self._next_worker, self._batches = {}, 0, 0

    def steps_per_epoch(self) -> int | None:
        """Batches each rank takes in this epoch, the same on every rank; None when unbounded
        (resampled) or unknown (tars without counts: each rank reads its shards to the end)."""
        if self.config.resampled or self.counts is None:
            return None
        return steps_per_epoch(
            epoch_order(self.urls, self.seed, self.epoch),
            self.counts,
            self.world_size,
            self.workers,
            self.config.batch_size,
            self.config.drop_last,
        )

    def __iter__(self) -> Iterator[TrainingBatch]:
        steps = self.steps_per_epoch()
        if steps is None or self._batches < steps:
            yield from self._epoch(steps)
        if not self.config.resampled:
            self.set_epoch(self.epoch + 1)

    def _epoch(self, steps: int | None) -> Iterator[TrainingBatch]:
        dataset = ShardStream(
            self.urls,
            self.config,
            self.rank,
            self.world_size,
            self.seed,
            self.epoch,
            dict(self._positions),
            self._next_worker,
            dict(self._errors),
            self.counts,
        )
        workers = self.config.num_workers
        if self.config.worker_kind == "thread" and workers:
            loader: Iterable[WorkerBatch] = thread_round_robin(
                dataset, workers, self.config.prefetch_factor, self.config.pin_memory
            )
        else:
            loader = DataLoader(
                dataset,
                batch_size=None,
                num_workers=workers,
                pin_memory=self.config.pin_memory,
                prefetch_factor=self.config.prefetch_factor if workers else None,
            )
        for batch in loader:
            position = batch.pop("_position")
            self._positions[position["worker"]] = position["samples"]
            self._errors[position["worker"]] = position["errors"]
            self._next_worker = (position["worker"] + 1) % self.workers
            if batch.pop("_end", False):
                continue
            self._batches += 1
            yield batch
            if self._batches == steps:
                return  # the rest of this rank's epoch is dropped: every rank stops at the same step

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "num_workers": self.workers,
            "resampled": self.config.resampled,
            "positions": {str(w): n for w, n in sorted(self._positions.items())},
            "next_worker": self._next_worker,
            "batches": self._batches,
            "errors": {str(w): dict(c) for w, c in sorted(self._errors.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, mine in (
            ("seed", self.seed),
            ("rank", self.rank),
            ("world_size", self.world_size),
            ("num_workers", self.workers),
            ("resampled", self.config.resampled),
        ):
            if state[name] != mine:
                raise LoaderError(
                    f"the saved loader position was made with {name}={state[name]!r}, "
                    f"this loader has {mine!r}; resume with the same {name}"
                )
        self.epoch = state["epoch"]
        self._positions = {int(w): n for w, n in state["positions"].items()}
        self._next_worker = state["next_worker"]
        self._batches = state.get("batches", 0)  # positions saved before ranks took equal steps lack it
        self._errors = {int(w): dict(c) for w, c in state["errors"].items()}


class ResolvedSource(NamedTuple):
    urls: list[str]
    counts: dict[str, int] | None  # samples per URL, from a version's manifest
    sample_rate: int | None  # the version's; None for a list of URLs


def resolve_urls(source: str | list[str], config: LoaderConfig) -> ResolvedSource:
    """The tar URLs to read, with their sample counts and rate when `source` is a version."""
    if isinstance(source, str) and not source.endswith(".tar") and not source.startswith("pipe:"):
        manifest = read_manifest(source)
        if config.split not in manifest["splits"]:
            raise LoaderError(
                f"{source} has no split {config.split!r} (it has: {', '.join(sorted(manifest['splits']))})"
            )
        if config.latents and "latent.npy" not in manifest["members"]:
            raise LoaderError(f"{source} has no latent.npy members; pre-encode it or read audio (latents: false)")
        urls = shard_urls(source, manifest, [config.split])
        counts = {join(source, s["tar"]): s["count"] for s in manifest["shards"] if s["split"] == config.split}
        return ResolvedSource(urls, counts, manifest["audio"]["sample_rate"])
    return ResolvedSource([source] if isinstance(source, str) else list(source), None, None)


def make_loader(
    source: str | list[str],
    config: LoaderConfig | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    seed: int = 0,
    epoch: int = 0,
) -> StreamingLoader:
    """The training loader for a published version (its folder or URL) or a list of tar URLs
    (paths, fsspec URLs, `pipe:` commands). rank and world_size default to torch.distributed's."""
    config = config or LoaderConfig()
    urls, counts, version_rate = resolve_urls(source, config)
    if config.sample_rate is None and version_rate is not None:
        config = config.model_copy(update={"sample_rate": version_rate})
    if rank is None or world_size is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        world_size = torch.distributed.get_world_size() if distributed else 1
    return StreamingLoader(urls, config, rank, world_size, seed, epoch, counts)
