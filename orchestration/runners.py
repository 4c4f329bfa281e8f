"""The engines that run a stage's work units: one small interface, three implementations.

A stage hands a runner a picklable function over work items and gets the items'
results back (JSON-able dicts) as they finish; the corpus-wide duplicate search is the
one grouping step each engine writes in its own idiom. Only this package imports Ray
or Beam, and only when that engine is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from orchestration.runner_config import RunnerConfig

# What a worker imports before its first unit (seconds: scipy, PyAV; pyarrow imports pandas
# at its first table conversion). Engines import it while they start, so that a job's
# engine start is measured apart from its work.
WORKER_IMPORTS = ("curation.unit", "pandas")

Item = TypeVar("Item")
Result = dict[str, Any]


class Runner(Protocol):
    name: str

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        """fn(item) for every item, in parallel; on_result called in this process as each ends."""

    def find_duplicates(self, parts: Sequence[str]) -> pa.Table:
        """Group the clip parts' rows by pcm_sha256; curation.dedup.DUPLICATE_SCHEMA rows out."""

    def close(self) -> None: ...


def worker_count(config: RunnerConfig) -> int:
    return config.workers or os.cpu_count() or 1


def make_runner(config: RunnerConfig) -> Runner:
    if config.name == "local":
        from orchestration.runner_local import LocalRunner

        return LocalRunner(worker_count(config))
    if config.name == "ray":
        from orchestration.runner_ray import RayRunner

        return RayRunner(config.ray, worker_count(config))
    from orchestration.runner_beam import BeamRunner

    return BeamRunner(config.beam, worker_count(config))
