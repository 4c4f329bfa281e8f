"""The choice of engine: the runner a job's RunnerConfig names, started with the job's worker imports."""

from __future__ import annotations

import os
from collections.abc import Sequence

from curation.core.extras import needs_extra
from orchestration.engines.base import Runner
from orchestration.engines.config import RunnerConfig
from orchestration.engines.local_runner import LocalRunner


def worker_count(config: RunnerConfig) -> int:
    return config.workers or os.cpu_count() or 1


def make_runner(config: RunnerConfig, warm_imports: Sequence[str] = ()) -> Runner:
    """`warm_imports`: the modules the job's workers import before their first unit. The local
    pool and Ray import them while the engine starts, so that a job's engine start is measured
    apart from its work; Beam starts its workers with each pipeline."""
    # Ray and Beam are optional and slow to import: only the chosen one is.
    if config.name == "local":
        return LocalRunner(worker_count(config), warm_imports)
    if config.name == "ray":
        with needs_extra("ray", "--runner.name ray", "ray"):
            from orchestration.engines.ray_runner import RayRunner

        return RayRunner(config.ray, worker_count(config), warm_imports)
    with needs_extra("beam", "--runner.name beam", "apache_beam"):
        from orchestration.engines.beam_runner import BeamRunner

    return BeamRunner(config.beam, worker_count(config))
