"""One rank's batches: the stage list each worker runs on its slice, and the round robin over threads."""

from __future__ import annotations

import collections
import dataclasses
import functools
import queue
import random
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from shards.loader.config import LoaderConfig
from shards.loader.examples import AudioRows, collate, make_example
from shards.loader.seed import stable_seed
from shards.loader.stages import (
    Replay,
    Stage,
    batch_samples,
    decode_samples,
    resample_shards,
    shard_list,
    shuffle_samples,
    shuffle_shards,
    skip_to,
    split_balanced,
    tar_samples,
)

# A worker's batch: a TrainingBatch plus "_position" (the worker, samples handed out, error counts),
# and "_end" on the worker's last word.
WorkerBatch = dict[str, Any]


class ShardStream(IterableDataset):
    """One rank's stream; in each DataLoader worker it runs the stage list on its own slice."""

    def __init__(
        self,
        urls: list[str],
        config: LoaderConfig,
        rank: int,
        world_size: int,
        seed: int,
        epoch: int,
        positions: dict[int, int],
        rotation: int,
        errors: dict[int, dict[str, int]],
        counts: dict[str, int] | None,
    ) -> None:
        self.urls, self.config, self.counts = urls, config, counts
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self.positions, self.rotation, self.errors = positions, rotation, errors

    def stages(self, worker: int, num_workers: int, errors: collections.Counter) -> list[Stage]:
        config = self.config
        start = self.positions.get(worker, 0)
        if config.resampled:
            # Draws are independent: a restore continues with a fresh stream seeded by the position.
            shards = [resample_shards(self.seed, self.rank, worker, self.epoch, start)]
            draw = (self.rank, worker, start)
            replay = Replay(0)
            position = skip_to(start, replay, counted_from=start)
        else:
            shards = [
                shuffle_shards(self.seed, self.epoch),
                split_balanced(self.counts, self.rank, self.world_size, worker, num_workers),
            ]
            draw = ()
            replay = Replay(start)
            position = skip_to(start, replay)
        buffer_rng = random.Random(stable_seed(self.seed, "buffer", self.epoch, self.rank, worker, *draw))
        rows = None if config.latents else AudioRows(config.batch_size, config.sample_size, config.channels)
        return [
            shard_list(self.urls),
            *shards,
            tar_samples(errors, self.counts, replay),
            shuffle_samples(config.shuffle_buffer, buffer_rng),
            position,
            decode_samples(
                functools.partial(make_example, config=config, seed=self.seed, epoch=self.epoch, draw=draw, rows=rows),
                errors,
            ),
            batch_samples(config.batch_size, config.drop_last, functools.partial(collate, rows=rows)),
        ]

    def __iter__(self) -> Iterator[WorkerBatch]:
        info = get_worker_info()
        return self.run(info.id if info else 0, info.num_workers if info else 1)

    def run(self, physical: int, num_workers: int) -> Iterator[WorkerBatch]:
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


def thread_round_robin(dataset: ShardStream, workers: int, prefetch: int, pin_memory: bool) -> Iterator[WorkerBatch]:
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

    threads = [
        threading.Thread(target=work, args=(w,), name=f"soundry-loader-{w}", daemon=True) for w in range(workers)
    ]
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
