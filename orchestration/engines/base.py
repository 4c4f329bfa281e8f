"""The engines that run a stage's work units: one small interface, three implementations.

A stage hands a runner a picklable function over work items and gets the items'
results back (JSON-able dicts) as they finish. A stage that holds a model hands a
ModelStage instead: a CPU step (decoding) and a model loaded once per model worker, which
each engine scales apart. The corpus-wide steps (the duplicate search, the caption
frequency count) are the grouping steps each engine writes in its own idiom. Only this
package imports Ray or Beam, and only when that engine is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from curation.core.storage import read_table
from orchestration.engines.config import RunnerConfig

# What a worker imports before its first unit (seconds: scipy, PyAV; pyarrow imports pandas
# at its first table conversion). Engines import it while they start, so that a job's
# engine start is measured apart from its work.
WORKER_IMPORTS = ("curation.unit", "pandas")

Item = TypeVar("Item")
Result = dict[str, Any]


@dataclass(frozen=True)
class ModelStage:
    """A stage holding a model: `prepare(item)` runs on CPU workers and its payload goes to
    a model worker, where `load()` (called once per worker) built the callable that turns
    payloads into results. Both must be picklable; the model itself never travels."""

    prepare: Callable[[Any], Any]
    load: Callable[[], Callable[[Any], Result]]
    workers: int = 1                 # model replicas (ray actors, beam: bounded by its workers)
    num_gpus: float | None = None    # per replica on ray; None: 1 when the cluster has GPUs, else 0
    batch_size: int = 1              # payloads a beam model DoFn receives per BatchElements batch


class Runner(Protocol):
    name: str

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """fn(item) for every item, in parallel; on_result called in this process as each ends."""

    def map_model(self, stage: ModelStage, items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """stage.prepare then the loaded model for every item; on_result called in this process as each ends."""

    def find_duplicates(self, parts: Sequence[str]) -> pa.Table:
        """Group the clip parts' rows by pcm_sha256; curation.dedup.DUPLICATE_SCHEMA rows out."""

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


def worker_count(config: RunnerConfig) -> int:
    return config.workers or os.cpu_count() or 1


def make_runner(config: RunnerConfig) -> Runner:
    if config.name == "local":
        from orchestration.engines.local_runner import LocalRunner

        return LocalRunner(worker_count(config))
    if config.name == "ray":
        from orchestration.engines.ray_runner import RayRunner

        return RayRunner(config.ray, worker_count(config))
    from orchestration.engines.beam_runner import BeamRunner

    return BeamRunner(config.beam, worker_count(config))
