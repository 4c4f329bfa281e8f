"""`soundry curate`: plan the units, run them on an engine, deduplicate, summarize.

Every step's output is committed atomically and checked before the step runs, so a run
killed anywhere (kill -9 included) is finished by running the same command again.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

from rich.console import Console

from curation.clip import clip_part_url, summary_url
from curation.config import CurationConfig
from curation.core.lease import OutputLease
from curation.core.storage import (
    exists,
    join,
    read_json,
    read_table,
    write_json_atomic,
    write_table_atomic,
)
from curation.core.strict_model import identity
from curation.dedup import apply_duplicates, decide_group, read_members
from curation.discover import discover, heaviest_first, plan_from_table, plan_to_table, plan_units
from curation.ffmpeg_binary import find_ffmpeg
from curation.summary import summarize
from curation.unit import UnitStats, run_unit
from orchestration.configs.jobs import CurateJob
from orchestration.configs.resolve import ConfigError
from orchestration.engines.registry import make_runner, worker_count
from orchestration.jobs.lease import output_lease
from orchestration.jobs.progress import CurationProgress

# pyarrow imports pandas, where it is installed, at its first table conversion (here, the plan):
# 1-2 s. Imported with the stage's other modules, so a run's timed phases hold its own work.
with contextlib.suppress(ImportError):
    import pandas  # noqa: F401

# What a unit's worker imports before its first unit (seconds: scipy, PyAV; pyarrow imports
# pandas at its first table conversion), imported while the engine starts. This module too:
# the function the workers run is its `_run_unit_dict`, and unpickling it imports this module
# (the job's own imports, rich among them: 66 ms) in each worker, at its first unit otherwise.
WORKER_IMPORTS = (__name__, "curation.unit", "pandas")


def curate(job: CurateJob, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    config = job.stage_config()
    with output_lease(config.output, "soundry curate", console) as lease:
        return _curate(job, config, lease, console)


def _curate(job: CurateJob, config: CurationConfig, lease: OutputLease, console: Console) -> dict[str, Any]:
    clock = _PhaseClock()
    if config.decode.ffmpeg or config.decode.backend == "ffmpeg":
        find_ffmpeg(config.decode.ffmpeg)  # a wrong binary is the user's error, said once, not per file
    # Inputs are listed before anything is written: a mistyped path leaves no output folder behind
    # (the lease removes the folder it made when nothing else was written there).
    plan = join(config.output, "plan.parquet")
    files = None if exists(plan) else discover(config.inputs, config.follow_sidecars, exclude=config.output)
    _claim_output(config)
    lease.remove_stale_temporaries()
    units = plan_from_table(read_table(plan)) if files is None else _plan(config, files)
    clock.lap("plan_s")
    runner = make_runner(job.runner, WORKER_IMPORTS)
    clock.lap("engine_start_s")
    try:
        with CurationProgress(len(units), console) as progress:
            results = runner.map(
                functools.partial(_run_unit_dict, config=config), heaviest_first(units), progress.unit_done
            )
        clock.lap("units_s")
        stats = [UnitStats.from_dict(r) for r in results]
        if config.dedup:
            parts = [clip_part_url(config.output, u.id) for u in units]
            apply_duplicates(
                config.output, lambda: runner.group_by_key(parts, read_members, decide_group), runner.map_few
            )
        clock.lap("dedup_s")
    finally:
        runner.close()
    clock.lap("engine_stop_s")
    summary = summarize(
        config.output,
        sorted(stats, key=lambda s: s.unit),
        clock.total(),
        clock.laps,
        runner.name,
        worker_count(job.runner),
    )
    # Written last: a folder with summary.json holds a complete clip table.
    lease.check()
    write_json_atomic(summary_url(config.output), summary)
    return summary


class _PhaseClock:
    def __init__(self) -> None:
        self.started = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now

    def total(self) -> float:
        return time.perf_counter() - self.started


def _run_unit_dict(unit, config: CurationConfig) -> dict[str, Any]:
    return run_unit(unit, config).to_dict()


def _claim_output(config: CurationConfig) -> None:
    """Refuse to mix two configurations in one output folder; record this one (storage options'
    values redacted: they may be credentials)."""
    url = join(config.output, "config.json")
    wanted = identity(config)
    if exists(url):
        found = read_json(url)
        if found != wanted:
            changed = sorted(_differences(found, wanted))
            raise ConfigError(
                f"output {config.output} holds a run made with another configuration "
                f"(differs in: {', '.join(changed)}); choose a new output folder or delete this one"
            )
        return
    write_json_atomic(url, wanted)


def _plan(config: CurationConfig, files: list) -> list:
    units = plan_units(files, config.units)
    write_table_atomic(join(config.output, "plan.parquet"), plan_to_table(units))
    return units


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]
