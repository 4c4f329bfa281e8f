"""`soundry shard` and `soundry publish`: plan the version, write its shards in parallel on
an engine, and (publish) commit it with stats, card and manifest.

`shard` is the first half of `publish`: it writes the shards and sidecars into the version
folder, which stays invisible to readers (no manifest). `publish` does the same (finding
written shards done) and then commits. Both resume a killed run where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curation.core.lease import OutputLease
from orchestration.configs.jobs import ShardJob
from orchestration.engines.config import RunnerConfig
from orchestration.engines.registry import make_runner, worker_count
from orchestration.jobs.lease import output_lease
from shards.config import ShardConfig
from shards.plan import Plan, ShardTask, make_plan
from shards.publish import begin, finish, refuse_published
from shards.writer import ShardResult, version_url, write_shard, written_shard

# What the shard writers import before their first shard, imported while the engine starts.
# This module too: the writers run its `_write_shard_dict`, and unpickling that imports this
# module (the job's own imports: 0.38 s) in each worker, at its first shard otherwise.
WORKER_IMPORTS = (__name__, "shards.writer")


def write_shards(job: ShardJob, console: Console | None = None) -> dict[str, Any]:
    """Write (or find written) every shard of the version; it stays unpublished."""
    console = console or Console(stderr=True)
    config, plan, phases = _plan(job)
    with output_lease(version_url(config), "soundry shard", console) as lease:
        results = _write(config, plan, lease, job.runner, console, phases)
    return _summary(config, plan, results, phases, job.runner, published=False)


def publish_version(job: ShardJob, console: Console | None = None) -> dict[str, Any]:
    """Write the version's shards (resuming), then commit it: stats, card, manifest last."""
    console = console or Console(stderr=True)
    config, plan, phases = _plan(job)
    with output_lease(version_url(config), "soundry publish", console) as lease:
        results = _write(config, plan, lease, job.runner, console, phases)
        with _phase(phases, "commit_s"):
            lease.check()
            manifest = finish(config, plan, results)
    summary = _summary(config, plan, results, phases, job.runner, published=True)
    summary["splits"] = manifest["splits"]
    summary["hours"] = manifest["totals"]["hours"]
    return summary


def _plan(job: ShardJob) -> tuple[ShardConfig, Plan, dict[str, float]]:
    """The version's plan, from its inputs alone: nothing is written before it stands."""
    config = job.stage_config()
    phases: dict[str, float] = {}
    with _phase(phases, "plan_s"):
        refuse_published(version_url(config))
        plan = make_plan(config)
    return config, plan, phases


def _write(
    config: ShardConfig,
    plan: Plan,
    lease: OutputLease,
    runner: RunnerConfig,
    console: Console,
    phases: dict[str, float],
) -> list[ShardResult]:
    """Claim the version, then write its shards (finding written ones done)."""
    with _phase(phases, "claim_s"):
        begin(config, plan)
        lease.remove_stale_temporaries()
    return _run(plan, config, runner, console, phases)


def _run(
    plan: Plan, config: ShardConfig, runner_config: RunnerConfig, console: Console, phases: dict[str, float]
) -> list[ShardResult]:
    # Shards already written cost no engine start: a publish after a shard only commits.
    found = {task.name: written_shard(task, config) for task in plan.tasks}
    done = [result for result in found.values() if result is not None]
    pending = [task for task in plan.tasks if found[task.name] is None]
    if not pending:
        return done
    with _phase(phases, "engine_start_s"):
        runner = make_runner(runner_config, WORKER_IMPORTS)
    try:
        with Progress(
            TextColumn("[bold]shard"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("shards"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("shard", total=len(plan.tasks), completed=len(done))
            with _phase(phases, "write_s"):
                results = runner.map(
                    functools.partial(_write_shard_dict, config=config), pending, lambda _: progress.advance(task)
                )
    finally:
        with _phase(phases, "engine_stop_s"):
            runner.close()
    return done + [ShardResult.from_dict(r) for r in results]


@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - started


def _write_shard_dict(task: ShardTask, config: ShardConfig) -> dict[str, Any]:
    return write_shard(task, config).to_dict()


def _summary(
    config: ShardConfig,
    plan: Plan,
    results: list[ShardResult],
    phases: dict[str, float],
    runner: RunnerConfig,
    published: bool,
) -> dict[str, Any]:
    fresh = [r for r in results if not r.resumed]
    written_bytes = sum(r.bytes for r in fresh)
    wall_s = sum(phases.values())
    write_s = phases.get("write_s", 0.0)
    return {
        "version": version_url(config),
        "published": published,
        "runner": runner.name,
        "workers": worker_count(runner),
        "clips_in": plan.clips_in,
        "clips_excluded": plan.excluded,
        "clips": sum(r.count for r in results),
        "shards": len(results),
        "shards_resumed": len(results) - len(fresh),
        "bytes": sum(r.bytes for r in results),
        "wall_s": wall_s,
        "phases_s": phases,
        # Throughput of the shard writing itself; a cluster's engine is already up.
        "mb_per_s": written_bytes / 1e6 / write_s if write_s > 0 else 0.0,
    }
