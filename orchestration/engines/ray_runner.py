"""The Ray engine: work units as Ray tasks, the corpus-wide steps as two-round hash shuffles of tasks."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import ray
from ray.util import ActorPool

from orchestration.engines.base import Item, ModelStage, Read, Reduce, Result, read_key_sums, sum_table, warm_up
from orchestration.engines.config import RayOptions


class RayRunner:
    """Joins the cluster named by RayOptions.address or RAY_ADDRESS; without one it starts a
    local Ray for the job and stops it again in close(). The CLI draws the job's progress
    from the results streaming back as units finish."""

    name = "ray"

    def __init__(self, options: RayOptions, workers: int, warm_imports: Sequence[str] = ()) -> None:
        self.workers = workers
        # The ids of the Ray nodes map's units ran on: on a cluster, the proof the work spread.
        self.unit_nodes: set[str] = set()
        # Only a Ray this runner connected to is shut down in close(); one the caller
        # already set up in this process is reused and left running.
        self._connected = not ray.is_initialized()
        if self._connected:
            address = options.address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                # A local Ray enables token auth by default; a job-private cluster on
                # this machine has no use for it and would need a token set up first.
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                # address="local": a Ray of the job's own even when another runs on this machine
                # (without it ray.init joins that one, and refuses num_cpus for it).
                ray.init(
                    address="local",
                    num_cpus=options.num_cpus or workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        # Import the job's heavy modules (seconds for curation's: scipy, pandas, PyAV) in every
        # worker now, so the engine's start is measured apart from the work, as the local pool's.
        # The imports take long enough that the tasks land on distinct worker processes.
        ray.get([_warm_up.remote(tuple(warm_imports)) for _ in range(workers)])

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]
    ) -> list[Result]:
        # Plain tasks, not Ray Data: a unit is coarse (seconds to minutes) and writes its own
        # output, so there is nothing to stream between operators, and on the demo corpus
        # Ray Data's executor took 21.6 s where the same units as tasks took 13.1 s.
        # At most two units in flight per worker: results stream back in completion order
        # and a failure stops the job without the whole corpus queued.
        fn_ref = ray.put(fn)
        queue = list(reversed(items))
        running: list[ray.ObjectRef] = []
        results: list[Result] = []
        while queue or running:
            while queue and len(running) < 2 * self.workers:
                running.append(_apply_on_node.remote(fn_ref, queue.pop()))
            done, running = ray.wait(running, num_returns=1)
            node, result = ray.get(done[0])
            self.unit_nodes.add(node)
            results.append(result)
            on_result(results[-1])
        return results

    def map_few(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        fn_ref = ray.put(fn)
        return [result for _, result in ray.get([_apply_on_node.remote(fn_ref, item) for item in items])]

    def map_model(self, stage: ModelStage, items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """CPU tasks prepare (decode), a pool of model actors (with GPUs where the cluster has
        them) consumes their payloads: two stages scaled apart, as Ray Data's map_batches
        with an actor pool would run them, without its per-block overhead on coarse units.
        A payload goes from task to actor through the object store, never through here."""
        if not items:
            return []
        gpus = stage.num_gpus if stage.num_gpus is not None else float(ray.cluster_resources().get("GPU", 0) > 0)
        actors = [_ModelWorker.options(num_gpus=gpus).remote(stage.load) for _ in range(stage.workers)]
        pool = ActorPool(actors)
        prepare_ref = ray.put(stage.prepare)
        queue = list(reversed(items))
        outstanding = 0
        results: list[Result] = []
        try:
            while queue or outstanding:
                # Decoded payloads wait in the object store: at most two per CPU worker and actor.
                while queue and outstanding < 2 * (self.workers + len(actors)):
                    payload = _apply.remote(prepare_ref, queue.pop())
                    pool.submit(lambda actor, ref: actor.run.remote(ref), payload)
                    outstanding += 1
                results.append(pool.get_next_unordered())
                outstanding -= 1
                on_result(results[-1])
        finally:
            for actor in actors:
                ray.kill(actor)
        return results

    def sum_by_key(self, parts: Sequence[str], keys: Sequence[str], value: str) -> pa.Table:
        """The shuffle of group_by_key with the sums combined on both sides of it: readers sum
        their parts and split the sums by key digest; each reducer adds up one bucket."""
        if not parts:
            return sum_table({}, keys, value)
        buckets = max(2, self.workers)
        readers = min(len(parts), 4 * self.workers)
        split = [
            _read_sums.options(num_returns=buckets).remote(list(parts[i::readers]), list(keys), value, buckets)
            for i in range(readers)
        ]
        reduced = [_add_sums.remote(*[refs[b] for refs in split]) for b in range(buckets)]
        totals = {key: count for bucket in ray.get(reduced) for key, count in bucket}
        return sum_table(totals, keys, value)

    def group_by_key(self, parts: Sequence[str], read: Read, reduce: Reduce) -> list[Result]:
        """A hash shuffle in two rounds of tasks: each reader splits its parts' pairs into one
        bucket per reducer by key digest; each reducer groups one bucket from every reader.

        Plain tasks rather than a Ray Data groupby: for the duplicate search the grouped pairs
        are three short strings per clip, and on the demo corpus Ray Data's groupby cost 6.7 s
        where this costs well under one. Memory per task is one bucket: corpus pairs / reducers.
        """
        if not parts:
            return []
        buckets = max(2, self.workers)  # two at least: one return value is not a list
        readers = min(len(parts), 4 * self.workers)
        split = [
            _read_split.options(num_returns=buckets).remote(read, list(parts[i::readers]), buckets)
            for i in range(readers)
        ]
        reduced = [_reduce_groups.remote(reduce, *[refs[b] for refs in split]) for b in range(buckets)]
        return [row for bucket in ray.get(reduced) for row in bucket]

    def close(self) -> None:
        if self._connected and ray.is_initialized():
            ray.shutdown()
        self._connected = False


# Units and warm-ups are spread over the nodes. Ray's default policy prefers the node a task is
# submitted from while it has room, and short units could all end there while other nodes idled:
# a two-node test's four units ran on the head node alone in 4 runs of 6, and spread, on both
# nodes in 6 of 6.
@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
def _warm_up(modules: Sequence[str]) -> None:
    warm_up(modules)


@ray.remote(num_cpus=1)
def _apply(fn: Callable[[Any], Result], item: Any) -> Result:
    return fn(item)


@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
def _apply_on_node(fn: Callable[[Any], Result], item: Any) -> tuple[str, Result]:
    return ray.get_runtime_context().get_node_id(), fn(item)


@ray.remote(num_cpus=1)
def _read_split(read: Read, parts: list[str], buckets: int) -> list[list[tuple[str, Any]]]:
    split: list[list[tuple[str, Any]]] = [[] for _ in range(buckets)]
    for part in parts:
        for key, value in read(part):
            # crc32, not hash(): the bucket must be the same in every worker process
            split[zlib.crc32(key.encode()) % buckets].append((key, value))
    return split


@ray.remote(num_cpus=1)
def _reduce_groups(reduce: Reduce, *buckets: list[tuple[str, Any]]) -> list[Result]:
    groups: dict[str, list[Any]] = {}
    for bucket in buckets:
        for key, value in bucket:
            groups.setdefault(key, []).append(value)
    return [row for values in groups.values() for row in reduce(values)]


# No CPU reserved: an actor holding one while it waits for a payload that only a CPU task
# can make would deadlock a cluster with as many CPUs as actors. Its threads are set by the
# model (torch), its GPU by map_model.
@ray.remote(num_cpus=0)
class _ModelWorker:
    """Loads the stage's model once; runs it on every payload the pool sends."""

    def __init__(self, load: Callable[[], Callable[[Any], Result]]) -> None:
        self.model = load()

    def run(self, payload: Any) -> Result:
        return self.model(payload)


@ray.remote(num_cpus=1)
def _read_sums(parts: list[str], keys: list[str], value: str, buckets: int) -> list[list[tuple[tuple[str, ...], int]]]:
    split: list[dict[tuple[str, ...], int]] = [{} for _ in range(buckets)]
    for part in parts:
        for key, count in read_key_sums(part, keys, value).items():
            bucket = split[zlib.crc32("\0".join(key).encode()) % buckets]
            bucket[key] = bucket.get(key, 0) + count
    return [list(bucket.items()) for bucket in split]


@ray.remote(num_cpus=1)
def _add_sums(*buckets: list[tuple[tuple[str, ...], int]]) -> list[tuple[tuple[str, ...], int]]:
    totals: dict[tuple[str, ...], int] = {}
    for bucket in buckets:
        for key, count in bucket:
            totals[tuple(key)] = totals.get(tuple(key), 0) + count
    return list(totals.items())
