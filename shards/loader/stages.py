"""The loader's generator stages: each takes the stream so far and yields the next (webdataset style)."""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import soundfile

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


def shuffle_shards(seed: int, epoch: int) -> Stage:
    """The same order on every rank and worker: seeded by seed and epoch only."""

    def stage(urls: Iterable[str]) -> Iterator[str]:
        shards = list(urls)
        random.Random(stable_seed(seed, "shards", epoch)).shuffle(shards)
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
        rng = random.Random(stable_seed(seed, "resample", rank, worker, epoch, start))
        while shards:
            yield rng.choice(shards)

    return stage


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
