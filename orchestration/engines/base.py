"""What every engine implements and shares: the Runner protocol, the model stage, the corpus-wide sum's helpers."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from curation.core.storage import read_table

Item = TypeVar("Item")
Result = dict[str, Any]
# A corpus-wide group-by in two functions: `read(part)` gives the part's (key, value) pairs and
# `reduce(values)` turns one key's values into result rows.
Read = Callable[[str], Iterable[tuple[str, Any]]]
Reduce = Callable[[list[Any]], list[Result]]


@dataclass(frozen=True)
class ModelStage:
    """A stage holding a model: `prepare(item)` runs on CPU workers and its payload goes to
    a model worker, where `load()` (called once per worker) built the callable that turns
    payloads into results. Both must be picklable; the model itself never travels."""

    prepare: Callable[[Any], Any]
    load: Callable[[], Callable[[Any], Result]]
    workers: int = 1  # model replicas (ray actors, beam: bounded by its workers)
    num_gpus: float | None = None  # per replica on ray; None: 1 when the cluster has GPUs, else 0
    batch_size: int = 1  # payloads a beam model DoFn receives per BatchElements batch


class Runner(Protocol):
    """Runs a stage's work units on one engine (local processes, Ray or Beam).

    A stage hands a runner a picklable function over work items and gets the items' results
    back (JSON-able dicts) as they finish; a stage holding a model hands a ModelStage, whose
    CPU step and model workers each engine scales apart. The two corpus-wide steps, a group-by
    and a sum, are each written in the engine's own idiom; what is grouped and how a group
    decides is the stage's, passed in as functions. Only this package imports Ray or Beam.
    """

    name: str

    def map(
        self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]
    ) -> list[Result]:
        """fn(item) for every item, in parallel; on_result called in this process as each ends."""

    def map_few(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """fn(item) for a handful of items of short work, all at once, where that costs least: a
        step after a corpus-wide one, such as rewriting the parts that hold duplicates. The local
        engine and Ray hand them to their workers, which are warm (imports done, memory already
        theirs) and a task away; Beam runs them on threads of this process, where a map would be
        a pipeline to start (on a remote runner, a job). Results in the items' order."""

    def map_model(self, stage: ModelStage, items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """stage.prepare then the loaded model for every item; on_result called in this process as each ends."""

    def group_by_key(self, parts: Sequence[str], read: Read, reduce: Reduce) -> list[Result]:
        """The (key, value) pairs read from every part, grouped by key over all parts; reduce
        called once per key with its values, in no fixed order. Its rows, concatenated, in no
        fixed order. `read` and `reduce` must be picklable and the rows JSON-able."""

    def sum_by_key(self, parts: Sequence[str], keys: Sequence[str], value: str) -> pa.Table:
        """The parts' rows grouped by the key columns, `value` summed (int64); sorted by key."""

    def close(self) -> None: ...


def sum_table(rows: dict[tuple[str, ...], int], keys: Sequence[str], value: str) -> pa.Table:
    """Summed rows (string keys) as a table sorted by key, the same from every engine."""
    ordered = sorted(rows.items())
    columns = {name: pa.array([k[i] for k, _ in ordered], pa.string()) for i, name in enumerate(keys)}
    columns[value] = pa.array([n for _, n in ordered], pa.int64())
    return pa.table(columns)


def read_key_sums(part: str, keys: Sequence[str], value: str) -> dict[tuple[str, ...], int]:
    """One part's rows summed by key: the map-side combine every engine starts with."""
    table = read_table(part, columns=[*keys, value]).group_by(list(keys)).aggregate([(value, "sum")])
    data = table.to_pydict()
    return {tuple(data[k][i] for k in keys): int(data[f"{value}_sum"][i]) for i in range(table.num_rows)}


def warm_up(modules: Sequence[str]) -> None:
    """Imports a job's heavy modules in a worker before its first unit. A warm import saves
    time and nothing else: a package that is not installed is skipped (pyarrow uses pandas
    only where it is installed, and the core install has none), while a module that is
    installed and fails to import still raises."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as missing:
            if missing.name != module.split(".")[0]:
                raise
