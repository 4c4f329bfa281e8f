"""The embedded default engine: this process, or a pool of worker processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import pyarrow as pa

from orchestration.engines.base import Item, ModelStage, Read, Reduce, Result, read_key_sums, sum_table, warm_up


class LocalRunner:
    name = "local"

    def __init__(self, workers: int, warm_imports: Sequence[str] = ()) -> None:
        self.workers = workers
        self._pool = None
        if workers > 1:
            # forkserver: workers start from a clean process, not a fork of one that may
            # hold threads (the progress display) and their locks. The server imports the
            # job's heavy modules once (seconds for curation's: scipy, pandas, PyAV) and every
            # worker forks from it. The server outlives the pool, so a later job in this
            # process forks from one preloaded for the first: its workers import their own
            # modules at the start too. The pool starts here, so a job's engine start is
            # measured apart from its work, as Ray's cluster start is.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(warm_imports))
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
            # Submitting the warm-up makes the pool start its workers now.
            list(self._pool.map(warm_up, [tuple(warm_imports)] * workers))

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]
    ) -> list[Result]:
        results: list[Result] = []
        if self._pool is None or len(items) <= 1:
            for item in items:
                results.append(fn(item))
                on_result(results[-1])
            return results
        # At most two items in flight per worker: results stream back steadily and a
        # failure stops the job without queueing the whole corpus.
        queue = list(reversed(items))
        running: set = set()
        while queue or running:
            while queue and len(running) < 2 * self.workers:
                running.add(self._pool.submit(fn, queue.pop()))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())
                on_result(results[-1])
        return results

    def map_few(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """On the pool's workers even for one item (map keeps a lone unit here): this process's
        memory is cold where theirs is in use: its rewrite of the demo corpus's part with
        duplicates took 114-177 ms (page faults, cold buffers), a worker's 31-123 ms."""
        if self._pool is None:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def map_model(self, stage: ModelStage, items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """The pool prepares (decodes) while this process runs the one model: torch already
        spreads a forward pass over every core, and a second replica would only double
        the memory."""
        if not items:
            return []
        model = stage.load()
        results: list[Result] = []
        if self._pool is None:
            for item in items:
                results.append(model(stage.prepare(item)))
                on_result(results[-1])
            return results
        # Payloads finish out of order but are consumed in item order, which keeps at most
        # 2 x workers decoded units in memory and the model's work in a fixed order.
        queue = list(reversed(items))
        pending: list = []
        while queue or pending:
            while queue and len(pending) < 2 * self.workers:
                pending.append(self._pool.submit(stage.prepare, queue.pop()))
            results.append(model(pending.pop(0).result()))
            on_result(results[-1])
        return results

    def group_by_key(self, parts: Sequence[str], read: Read, reduce: Reduce) -> list[Result]:
        """In this process, one part at a time: the grouped pairs are small (a few short
        strings per row), and the parts' order gives the rows' order."""
        groups: dict[str, list[Any]] = {}
        for part in parts:
            for key, value in read(part):
                groups.setdefault(key, []).append(value)
        return [row for values in groups.values() for row in reduce(values)]

    def sum_by_key(self, parts: Sequence[str], keys: Sequence[str], value: str) -> pa.Table:
        totals: dict[tuple[str, ...], int] = {}
        for part in parts:
            for key, count in read_key_sums(part, keys, value).items():
                totals[key] = totals.get(key, 0) + count
        return sum_table(totals, keys, value)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
