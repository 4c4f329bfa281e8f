"""The loader's generator stages: each takes the stream so far and yields the next (webdataset style)."""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import soundfile

from shards.loader.balance import worker_shards
from shards.loader.batch import TrainingBatch
from shards.loader.seed import stable_seed
from shards.loader.tars import BrokenShard, Sample, read_tar_samples

log = logging.getLogger("soundry.loader")

Stage = Callable[[Iterable[Any]], Iterator[Any]]

# What a broken sample raises while decoded: bad json, bad FLAC, bad npy, a missing member.
_BAD_SAMPLE = (KeyError, ValueError, TypeError, RuntimeError, EOFError, soundfile.LibsndfileError)


def shard_list(urls: list[str]) -> Callable[[None], Iterator[str]]:
    """The source: it takes nothing."""

    def stage(_: None) -> Iterator[str]:
        yield from urls

    return stage


def epoch_order(urls: Iterable[str], seed: int, epoch: int) -> list[str]:
    """The same order on every rank and worker: seeded by seed and epoch only."""
    shards = list(urls)
    random.Random(stable_seed(seed, "shards", epoch)).shuffle(shards)
    return shards


def shuffle_shards(seed: int, epoch: int) -> Stage:
    def stage(urls: Iterable[str]) -> Iterator[str]:
        yield from epoch_order(urls, seed, epoch)

    return stage


def split_balanced(counts: Mapping[str, int] | None, rank: int, world_size: int, worker: int, workers: int) -> Stage:
    """This (rank, worker)'s shards: the epoch's list dealt to ranks, then workers, by sample count (balance.py)."""

    def stage(urls: Iterable[str]) -> Iterator[str]:
        yield from worker_shards(list(urls), counts, rank, world_size, worker, workers)

    return stage


def resample_shards(seed: int, rank: int, worker: int, epoch: int, start: int) -> Stage:
    """Shards drawn with replacement forever; a restored position starts a fresh seeded stream."""

    def stage(urls: Iterable[str]) -> Iterator[str]:
        shards = list(urls)
        rng = random.Random(stable_seed(seed, "resample", rank, worker, epoch, start))
        while shards:
            yield rng.choice(shards)

    return stage


class Replay:
    """Whether a restored stream is still re-reading what was handed out before the checkpoint.
    Damage met on the way was counted then (the counts are part of the position), so it is not
    counted or logged again."""

    def __init__(self, samples_to_replay: int) -> None:
        self.active = samples_to_replay > 0


def tar_samples(errors: collections.Counter, expected: Mapping[str, int] | None, replay: Replay) -> Stage:
    """Tar streams to samples. A broken shard is skipped from where it breaks; one that ends
    before the sample count its manifest gives (a tar cut exactly between two members reads as
    complete) is broken too. Each is counted and logged."""

    def damaged(message: str, *args: Any, partial: bool = False) -> None:
        if not replay.active:
            errors["shards"] += 1
            errors["samples"] += 1 if partial else 0
            log.warning(message, *args)

    def stage(urls: Iterable[str]) -> Iterator[Sample]:
        for url in urls:
            read = 0
            try:
                for sample in read_tar_samples(url):
                    read += 1
                    yield sample
            except BrokenShard as broken:
                damaged(
                    "skipped the rest of %s (the sample it broke in is dropped)", broken, partial=bool(broken.partial)
                )
                continue
            wanted = expected.get(url) if expected is not None else None
            if wanted is not None and read < wanted:
                damaged("shard %s ended after %d of its %d samples: it was cut short", url, read, wanted)

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


def skip_to(position: int, replay: Replay, counted_from: int = 0) -> Stage:
    """Number the samples from counted_from; drop those at or before the saved position (not
    decoded). The replay ends with the last sample dropped."""

    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        for number, sample in enumerate(samples, start=counted_from + 1):
            if number > position:
                sample["__position__"] = number
                yield sample
            elif number == position:
                replay.active = False

    return stage


def decode_samples(decode: Callable[[Sample], Sample], errors: collections.Counter) -> Stage:
    """Samples to examples; a sample that fails to decode is skipped, counted and logged."""

    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        for sample in samples:
            try:
                yield decode(sample)
            except _BAD_SAMPLE as error:
                errors["samples"] += 1
                log.warning(
                    "skipped sample %s in %s: %s: %s", sample["__key__"], sample["__url__"], type(error).__name__, error
                )

    return stage


def batch_samples(batch_size: int, drop_last: bool, collate: Callable[[list[Sample]], TrainingBatch]) -> Stage:
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
