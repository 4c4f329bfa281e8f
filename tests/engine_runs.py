"""Curation through a given engine, keeping the engine the job made so a test can ask where its units ran."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestration.configs.jobs import CurateJob
from orchestration.jobs import curate as curate_module


def curate_with(corpus: Path, output: Path, runner: dict) -> Any:
    """Runs the curation job; returns the engine it ran on, kept as the job makes it."""
    make_runner = curate_module.make_runner
    made = []

    def keep(config, warm_imports=()):
        made.append(make_runner(config, warm_imports))
        return made[-1]

    job = CurateJob.model_validate(
        {"inputs": [{"path": str(corpus)}], "output": str(output), "segment": {"window_s": 2.0}, "runner": runner}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(curate_module, "make_runner", keep)
        curate_module.curate(job, Console(file=io.StringIO()))
    return made[0]
