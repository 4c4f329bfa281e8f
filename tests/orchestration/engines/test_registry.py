"""The engine a RunnerConfig names is the one made, with the job's worker imports."""

from __future__ import annotations

import os

import pytest

from orchestration.engines import registry
from orchestration.engines.config import RunnerConfig
from orchestration.engines.local_runner import LocalRunner


@pytest.mark.parametrize("workers,expected", [(3, 3), (0, os.cpu_count() or 1)])
def test_worker_count(workers, expected):
    assert registry.worker_count(RunnerConfig(workers=workers)) == expected


def test_local_in_process_with_one_worker():
    runner = registry.make_runner(RunnerConfig(name="local", workers=1), ("curation.dedup",))
    assert isinstance(runner, LocalRunner) and runner.name == "local" and runner.workers == 1
    runner.close()


def test_the_job_names_its_worker_imports(monkeypatch):
    made = []
    monkeypatch.setattr(registry, "LocalRunner", lambda *args: made.append(args))
    registry.make_runner(RunnerConfig(name="local", workers=4), ("curation.unit", "pandas"))
    assert made == [(4, ("curation.unit", "pandas"))]


def test_beam_is_made_on_demand():
    runner = registry.make_runner(RunnerConfig(name="beam", workers=2))
    assert runner.name == "beam"
    runner.close()
