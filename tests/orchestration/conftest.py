"""The three engines as fixtures, for tests that must hold on every one of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestration.engines.beam_runner import BeamRunner
from orchestration.engines.config import BeamOptions, RayOptions
from orchestration.engines.local_runner import LocalRunner
from orchestration.engines.ray_runner import RayRunner


@pytest.fixture(scope="module")
def ray_runner() -> Iterator[RayRunner]:
    runner = RayRunner(RayOptions(), workers=2)
    yield runner
    runner.close()


@pytest.fixture(params=["local", "ray", "beam"])
def runner(request: pytest.FixtureRequest) -> Any:
    if request.param == "local":
        return LocalRunner(2)
    if request.param == "ray":
        return request.getfixturevalue("ray_runner")
    return BeamRunner(BeamOptions(), workers=2)
