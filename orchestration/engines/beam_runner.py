"""The Apache Beam engine: work units as a ParDo, the group-by as a GroupByKey, the sum as a CombinePerKey."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, PipelineOptions, StandardOptions

from orchestration.engines.base import Item, ModelStage, Read, Reduce, Result, read_key_sums, sum_table
from orchestration.engines.config import BeamOptions

log = logging.getLogger(__name__)

COUNTER_NAMESPACE = "soundry"
# One model load at a time in a process: Beam's local runners set up DoFns in worker threads of
# one process, and libraries import lazily on first use in ways that are not thread-safe (two
# threads importing transformers' ClapModel at once: one gets "cannot import name 'ClapModel'").
_MODEL_LOAD = threading.Lock()
# map_few's threads: its work (a part's rewrite: Parquet and the disk) runs mostly without the GIL.
_FEW_AT_ONCE = 4


class BeamRunner:
    """A Beam pipeline returns only when it is done, so on runners other than the local one's
    worker threads, results reach on_result at the end of the map, not as units finish; the
    pipeline's counters report progress to Beam's own UI. Those result dicts come back through
    files of JSON lines: on a runner that retries bundles, a WriteToText, which Beam commits
    exactly once; on the local runner, which never retries one, a file per bundle. The local
    worker threads, in this process, hand each result back as its unit ends."""

    name = "beam"

    def __init__(self, options: BeamOptions, workers: int) -> None:
        self.options = _pipeline_options(options.pipeline_options, workers)
        # The threads or processes of Beam's local FnApiRunner, which split work statically; 0 for
        # other runners (Dataflow, Flink, Spark), which balance it themselves.
        self.local_workers = _local_workers(self.options)
        # Threads of this process (--direct_running_mode=multi_threading, the default): they can
        # take units from one queue as they finish, as the local engine's processes do.
        self.worker_threads = (
            self.local_workers
            if self.local_workers > 1 and self.options.view_as(DirectOptions).direct_running_mode == "multi_threading"
            else 0
        )
        # The group-bys (duplicates, label counts) read a few columns of each part and group short
        # strings. On the local runner one embedded worker does that with the least set-up, as the
        # local engine does it in its own process: no worker threads and gRPC channels to start and
        # no shuffle to spread the parts. Remote runners keep their workers.
        self.grouping_options = (
            _pipeline_options(
                [*options.pipeline_options, "--direct_running_mode=in_memory", "--direct_num_workers=1"], 1
            )
            if self.local_workers
            else self.options
        )
        # The worker processes (host:pid) map's and map_model's units ran in: with a runner whose
        # SDK workers are processes of their own, the proof the work left this process.
        self.unit_workers: set[str] = set()
        # Pipelines whose units are all done, still closing their bundles (see _map_from_queue).
        self._running: list[_BackgroundRun] = []

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]
    ) -> list[Result]:
        if not items:
            return []
        if self.worker_threads:
            return self._map_from_queue(fn, items, on_result)
        if self.local_workers > 1:
            # Each worker runs the bundle dealt to it to its end: dealt in turns that snake,
            # heaviest-first items split about evenly.
            ordered = _dealt_in_turns(items, self.local_workers)
            done = self._run_and_collect(lambda p: _dealt_to_workers(p, ordered) | beam.ParDo(_Apply(fn)))
        else:
            # Create spreads its elements over a remote runner's workers (it ends in a reshuffle).
            done = self._run_and_collect(lambda p: p | beam.Create(items) | beam.ParDo(_Apply(fn)))
        return self._report(done, on_result)

    def _map_from_queue(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]
    ) -> list[Result]:
        """`fn` over `items` on the local runner's worker threads, each taking the next item
        when it is done with one. The runner deals a stage's elements into one bundle per
        thread before any runs, so however the units are ordered, one thread could end its
        bundle while the other still had units dealt to it (on the demo corpus the two ended
        0.46 s apart, in a 4.6 s pipeline). Here the pipeline's elements are one ticket per
        thread, each dealt to a bundle of its own, and the units stay in a queue in this
        process, where the threads run.

        The threads hand each result back through the queue, so on_result sees units as they
        end, and the map returns once the last is in. The pipeline itself still has its
        bundles to close: each thread's state sampler sleeps out up to 200 ms before it stops
        (Beam's fixed period). That tail runs on in the background, beside the job's next
        step, and close() waits for it."""
        units = _UnitQueue(items)
        token = uuid.uuid4().hex
        _QUEUES[token] = units
        pipeline = beam.Pipeline(options=self.options)
        _ = _dealt_to_workers(pipeline, [token] * self.worker_threads) | beam.ParDo(_ApplyFromQueue(fn))
        run = _BackgroundRun(pipeline, ended=lambda: _QUEUES.pop(token).end())
        self._running.append(run)
        try:
            done = self._report(units.finished(len(items)), on_result)
        finally:
            units.close()  # a failure here (or an interrupt) ends the map: the threads take no more
        if len(done) < len(items):
            self._running.remove(run)
            run.join()  # the pipeline ended before every unit did: its error says why
            raise RuntimeError(f"the Beam pipeline ended with {len(items) - len(done)} of {len(items)} units not run")
        return done

    def map_few(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """On threads of this process: a pipeline would cost more than the work (a remote
        runner's, a job's start), and the local runner's workers are threads of this process."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(min(len(items), _FEW_AT_ONCE)) as pool:
            return list(pool.map(fn, items))

    def map_model(self, stage: ModelStage, items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """prepare as a Map, then BatchElements in front of a DoFn that loads the model in setup()."""
        if not items:
            return []
        done = self._run_and_collect(
            lambda p: (
                p
                | beam.Create(items)
                | beam.Map(stage.prepare)
                | beam.BatchElements(min_batch_size=1, max_batch_size=stage.batch_size)
                | beam.ParDo(_ModelDoFn(stage.load))
            )
        )
        return self._report(done, on_result)

    def sum_by_key(self, parts: Sequence[str], keys: Sequence[str], value: str) -> pa.Table:
        if not parts:
            return sum_table({}, keys, value)
        rows = self._run_and_collect(
            lambda p: (
                p
                | beam.Create(parts, reshuffle=not self.local_workers)
                | beam.FlatMap(functools.partial(_key_sums, keys=list(keys), value=value))
                | beam.CombinePerKey(sum)
                | beam.Map(lambda pair: {"key": list(pair[0]), "count": pair[1]})
            ),
            self.grouping_options,
        )
        return sum_table({tuple(r["key"]): r["count"] for r in rows}, keys, value)

    def group_by_key(self, parts: Sequence[str], read: Read, reduce: Reduce) -> list[Result]:
        if not parts:
            return []
        # Parts are read by the stage's own function, not ReadFromParquet, so that what it
        # reads can name its part by exactly the string given.
        return self._run_and_collect(
            lambda p: (
                p
                | beam.Create(parts, reshuffle=not self.local_workers)
                | beam.FlatMap(read)
                | beam.GroupByKey()
                | beam.FlatMap(functools.partial(_reduce_group, reduce=reduce))
            ),
            self.grouping_options,
        )

    def close(self) -> None:
        """Waits for the pipelines still closing their bundles; raises the first one's error."""
        running, self._running = self._running, []
        for run in running:
            run.join()

    def _report(self, done: Iterable[dict[str, Any]], on_result: Callable[[Result], None]) -> list[Result]:
        """The results of units that came back with the worker that ran them."""
        results = []
        workers = set()
        for unit in done:
            workers.add(unit["worker"])
            results.append(unit["result"])
            on_result(results[-1])
        log.info("beam: %d units ran in %d worker processes", len(results), len(workers))
        self.unit_workers |= workers
        return results

    def _run_and_collect(
        self, build: Callable[[beam.Pipeline], beam.PCollection], options: PipelineOptions | None = None
    ) -> list[dict[str, Any]]:
        """Run the pipeline `build` makes (with `options`, the engine's by default); return its
        output elements (JSON-able dicts)."""
        # Remote runners need the results folder where both their workers and this
        # process can reach it: under --temp_location (e.g. gs://...) when given.
        temp_location = self.options.view_as(GoogleCloudOptions).temp_location
        folder = (
            f"{temp_location.rstrip('/')}/soundry-{uuid.uuid4().hex}"
            if temp_location
            else tempfile.mkdtemp(prefix="soundry-beam-")
        )
        try:
            pipeline = beam.Pipeline(options=options or self.options)
            lines = build(pipeline) | beam.Map(json.dumps)
            if self.local_workers:
                # Beam's local runner never retries a bundle (a failure fails the pipeline), so a
                # file per bundle holds each result once, without WriteToText's commit stages
                # (0.3 s of every pipeline here).
                _ = lines | beam.ParDo(_WriteBundle(folder))
            else:
                _ = lines | beam.io.WriteToText(f"{folder}/results", file_name_suffix=".jsonl")
            result = pipeline.run()
            result.wait_until_finish()
            _log_counters(result)
            return list(_read_json_lines(folder))
        finally:
            if temp_location and "://" in temp_location:
                # Best effort: a failed clean-up must not hide the pipeline's own error.
                with contextlib.suppress(Exception):
                    FileSystems.delete([f"{folder}/"])  # trailing slash: every object under it
            else:
                # A folder on disk (a shared mount under --temp_location, or this machine's): the
                # trailing-slash delete above would leave the folder itself behind.
                shutil.rmtree(folder, ignore_errors=True)


def _pipeline_options(args: list[str], workers: int) -> PipelineOptions:
    """The user's options, with the DirectRunner swapped for the FnApiRunner.

    Beam's DirectRunner first tries the PrismRunner, which downloads a binary from GitHub (on
    a machine without internet access that fails, or hangs without a timeout). So a
    DirectRunner in the options runs on the FnApiRunner instead: the runner DirectRunner
    falls back to, honouring the same --direct_running_mode and --direct_num_workers.
    """
    options = PipelineOptions(args)
    runner = (options.view_as(StandardOptions).runner or "DirectRunner").lower().removesuffix("runner")
    given = {arg.split("=")[0] for arg in args}
    extra = []
    if runner in ("direct", "switchingdirect"):
        extra.append("--runner=FnApiRunner")  # the last --runner given wins
    in_memory = options.view_as(DirectOptions).direct_running_mode == "in_memory"
    if runner in ("direct", "switchingdirect", "fnapi") and not in_memory and "--direct_num_workers" not in given:
        extra.append(f"--direct_num_workers={workers}")
    return PipelineOptions([*args, *extra])


def _local_workers(options: PipelineOptions) -> int:
    if (options.view_as(StandardOptions).runner or "").lower().removesuffix("runner") != "fnapi":
        return 0
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode == "in_memory":
        return 1
    return direct.direct_num_workers or os.cpu_count() or 1  # 0: the FnApiRunner takes one per core


def _dealt_to_workers(pipeline: beam.Pipeline, elements: Sequence[Any]) -> beam.PCollection:
    """`elements` dealt round robin, in their order, to the bundles of the local runner's
    workers. The runner deals a grouped stage's keys to its workers in turns, in the order the
    keys came, so the elements are keyed by their position and grouped. Create's own
    reshuffle would deal them by random keys, and takes twice the transforms to build: the
    first element of a map began 0.20-0.26 s after the run, and begins 0.14-0.15 s after."""
    return (
        pipeline
        | beam.Create(list(enumerate(elements)), reshuffle=False)
        | beam.GroupByKey()
        | beam.FlatMap(lambda position_and_elements: position_and_elements[1])
    )


def _dealt_in_turns(items: Sequence[Item], hands: int) -> list[Item]:
    """`items` reordered so that dealing them round robin into `hands` gives the hands turns
    in a snake: the first row of `hands` items goes 0, 1, ..., the next back from the last
    hand, and so on, so no hand takes the heavier item of every row."""
    ordered: list[Item] = []
    for row, start in enumerate(range(0, len(items), hands)):
        turn = list(items[start : start + hands])
        ordered += turn[::-1] if row % 2 else turn
    return ordered


class _Apply(beam.DoFn):
    def __init__(self, fn: Callable[[Any], Result]) -> None:
        self.fn = fn
        self.units = Metrics.counter(COUNTER_NAMESPACE, "units")

    def process(self, item: Any) -> Iterator[Result]:
        result = self.fn(item)
        self.units.inc()
        for key, value in result.items():
            if isinstance(value, int) and not isinstance(value, bool):
                Metrics.counter(COUNTER_NAMESPACE, key).inc(value)
        yield {"worker": _this_worker(), "result": result}


class _UnitQueue:
    """The items of one map, taken one at a time by whichever worker thread is free, and their
    results, handed back as each ends."""

    _ENDED = object()  # put after the last result: the pipeline has ended

    def __init__(self, items: Sequence[Item]) -> None:
        self._items = deque(items)
        self._lock = threading.Lock()
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def take(self) -> tuple[bool, Item]:
        with self._lock:
            return (True, self._items.popleft()) if self._items else (False, None)

    def put(self, done: dict[str, Any]) -> None:
        self._done.put(done)

    def close(self) -> None:
        """No more items are taken; the units under way end."""
        with self._lock:
            self._items.clear()

    def end(self) -> None:
        """The pipeline has ended: no thread will put another result."""
        self.close()
        self._done.put(self._ENDED)

    def finished(self, count: int) -> Iterator[dict[str, Any]]:
        """The results as they are put, until `count` are in or the pipeline has ended."""
        for _ in range(count):
            done = self._done.get()
            if done is self._ENDED:
                return
            yield done


# The queues of the maps under way, by token: a ticket carries its map's token to the worker
# thread that processes it, in this process.
_QUEUES: dict[str, _UnitQueue] = {}


class _ApplyFromQueue(_Apply):
    """Given a ticket (its map's token), applies the function to items from that map's queue
    until it is empty."""

    def process(self, token: str) -> None:
        units = _QUEUES[token]
        while True:
            found, item = units.take()
            if not found:
                return
            try:
                for done in super().process(item):
                    units.put(done)
            except BaseException:
                units.close()  # the job fails: the other threads end their units and take no more
                raise


class _BackgroundRun:
    """A pipeline run and waited for in a thread of its own; `ended` is called when it has
    ended, however it ended."""

    def __init__(self, pipeline: beam.Pipeline, ended: Callable[[], None]) -> None:
        self._pipeline = pipeline
        self._ended = ended
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="soundry-beam-pipeline")
        self._thread.start()

    def _run(self) -> None:
        try:
            result = self._pipeline.run()
            result.wait_until_finish()
            _log_counters(result)
        except BaseException as error:  # raised in the job's thread, by join()
            self._error = error
        finally:
            self._ended()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


class _ModelDoFn(beam.DoFn):
    """The model is built once per DoFn instance (setup), then serves every batch it is given."""

    def __init__(self, load: Callable[[], Callable[[Any], Result]]) -> None:
        self.load = load
        self.units = Metrics.counter(COUNTER_NAMESPACE, "model_units")

    def setup(self) -> None:
        with _MODEL_LOAD:
            self.model = self.load()

    def process(self, batch: list[Any]) -> Iterator[Result]:
        for payload in batch:
            result = self.model(payload)
            self.units.inc()
            yield {"worker": _this_worker(), "result": result}


class _WriteBundle(beam.DoFn):
    """Each bundle's lines into a file of its own in `folder`, opened at its first line and
    closed when the bundle ends."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def start_bundle(self) -> None:
        self.file: Any = None

    def process(self, line: str) -> None:
        if self.file is None:
            self.file = FileSystems.create(f"{self.folder}/results-{uuid.uuid4().hex}.jsonl")
        self.file.write(line.encode() + b"\n")

    def finish_bundle(self) -> None:
        if self.file is not None:
            self.file.close()


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _key_sums(part: str, keys: list[str], value: str) -> Iterator[tuple[tuple[str, ...], int]]:
    yield from read_key_sums(part, keys, value).items()


def _reduce_group(group: tuple[str, Iterable[Any]], reduce: Reduce) -> list[Result]:
    return reduce(list(group[1]))


def _read_json_lines(folder: str) -> Iterator[dict[str, Any]]:
    for match in FileSystems.match([f"{folder}/results*"])[0].metadata_list:
        with FileSystems.open(match.path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def _log_counters(result: beam.runners.runner.PipelineResult) -> None:
    for counter in result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE))["counters"]:
        log.info("beam counter %s: %s", counter.key.metric.name, counter.result)
