"""Beam's local runner splits a pipeline's elements statically, one bundle per worker; the
runner orders heaviest-first units so that the split is even."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import cloudpickle
import pytest

from orchestration.engines.beam_runner import BeamRunner
from orchestration.engines.config import BeamOptions

pytestmark = pytest.mark.slow

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _weigh_on_this_thread(weight: int) -> dict[str, Any]:
    time.sleep(0.05)  # both bundles are under way before either ends: each has a thread of its own
    return {"weight": weight, "thread": threading.get_ident()}


def test_heaviest_first_units_are_split_evenly_over_the_local_workers() -> None:
    runner = BeamRunner(BeamOptions(), workers=2)
    assert runner.local_workers == 2
    results = runner.map(_weigh_on_this_thread, [8, 7, 6, 5, 4, 3, 2, 1], lambda result: None)
    loads: dict[int, int] = {}
    for result in results:
        loads[result["thread"]] = loads.get(result["thread"], 0) + result["weight"]
    # Dealt in plain turns, one thread would get 8 + 6 + 4 + 2 = 20 and the other 16.
    assert sorted(loads.values()) == [18, 18]


def test_only_the_local_fnapi_runner_counts_workers_that_split_statically() -> None:
    # Remote runners balance bundles themselves: they get the units in the order given.
    remote = BeamRunner(BeamOptions(pipeline_options=["--runner=DataflowRunner"]), workers=2)
    in_memory = BeamRunner(BeamOptions(pipeline_options=["--runner=DirectRunner"]), workers=2)
    assert (remote.local_workers, in_memory.local_workers) == (0, 1)
