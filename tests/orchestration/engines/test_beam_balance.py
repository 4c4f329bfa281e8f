"""Beam's local runner splits a pipeline's elements statically, one bundle per worker. Its
worker threads take units from one queue instead, as they finish; worker processes get the
units dealt in turns that snake, so that heaviest-first units split about evenly."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from apache_beam.internal.cloudpickle import cloudpickle as beams_cloudpickle
from apache_beam.options.pipeline_options import DirectOptions

from orchestration.engines.beam_runner import BeamRunner, _dealt_in_turns
from orchestration.engines.config import BeamOptions

pytestmark = pytest.mark.slow

cloudpickle.register_pickle_by_value(sys.modules[__name__])
beams_cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Beam's own copy, for its worker processes


def _weigh_on_this_thread(weight: int) -> dict[str, Any]:
    time.sleep(0.03 * weight)
    return {"weight": weight, "thread": threading.get_ident()}


def test_the_worker_threads_take_units_as_they_finish() -> None:
    """One long unit and eight short ones, which together take half its time: the thread that
    takes the long one is still on it when the other has run them all. Dealt to the threads
    before they start (as the runner deals elements), the long one's thread would get four of
    the short ones too, and the job would end 0.12 s after it."""
    runner = BeamRunner(BeamOptions(), workers=2)
    assert runner.worker_threads == 2
    results = runner.map(_weigh_on_this_thread, [16, 1, 1, 1, 1, 1, 1, 1, 1], lambda result: None)
    assert sorted(result["weight"] for result in results) == [1] * 8 + [16]
    by_thread: dict[int, list[int]] = {}
    for result in results:
        by_thread.setdefault(result["thread"], []).append(result["weight"])
    assert sorted(by_thread.values()) == [[1] * 8, [16]]


def _start_then_fail_or_wait(item: tuple[str, int]) -> dict[str, Any]:
    folder, index = item
    Path(folder, str(index)).touch()  # files, not a list: this module is pickled by value
    if index == 0:
        raise RuntimeError("unit 0 failed")
    time.sleep(0.05)
    return {"index": index}


def test_after_a_failed_unit_the_other_thread_takes_no_more(tmp_path: Path) -> None:
    runner = BeamRunner(BeamOptions(), workers=2)
    items = [(str(tmp_path), index) for index in range(40)]
    with pytest.raises(Exception, match="unit 0 failed"):
        runner.map(_start_then_fail_or_wait, items, lambda result: None)
    started = len(list(tmp_path.iterdir()))
    time.sleep(0.5)  # left to itself, the other thread would run the 39 others in 2 s
    assert len(list(tmp_path.iterdir())) == started < 10


def _weigh_in_this_process(weight: int) -> dict[str, Any]:
    return {"weight": weight, "process": os.getpid()}


def test_worker_processes_get_heaviest_first_units_dealt_in_turns_that_snake() -> None:
    # Processes cannot share the queue: each runs the bundle dealt to it, from this order.
    assert _dealt_in_turns([8, 7, 6, 5, 4, 3, 2, 1], 2) == [8, 7, 5, 6, 4, 3, 1, 2]
    # Beam's cloudpickle pickles this module's functions by value: a worker process cannot
    # import a test module.
    options = ["--direct_running_mode=multi_processing", "--pickle_library=cloudpickle"]
    processes = BeamRunner(BeamOptions(pipeline_options=options), workers=2)
    assert (processes.local_workers, processes.worker_threads) == (2, 0)
    results = processes.map(_weigh_in_this_process, [8, 7, 6, 5, 4, 3, 2, 1], lambda result: None)
    loads: dict[int, int] = {}
    for result in results:
        loads[result["process"]] = loads.get(result["process"], 0) + result["weight"]
    assert len(loads) == 2 and os.getpid() not in loads
    assert sorted(loads.values()) == [18, 18]  # in plain turns: 8 + 6 + 4 + 2 = 20 against 16


def test_only_the_local_fnapi_runner_counts_workers_that_split_statically() -> None:
    # Remote runners balance bundles themselves: they get the units in the order given.
    remote = BeamRunner(BeamOptions(pipeline_options=["--runner=DataflowRunner"]), workers=2)
    in_memory = BeamRunner(BeamOptions(pipeline_options=["--runner=DirectRunner"]), workers=2)
    assert (remote.local_workers, in_memory.local_workers) == (0, 1)


def test_the_local_runner_groups_in_one_embedded_worker() -> None:
    """The group-bys read a few columns per part: on the local runner one in-memory worker, with
    no threads to start and no shuffle, takes half the time of the threaded pipeline (0.15
    against 0.3 s for the demo corpus's duplicates). Remote runners keep their own workers."""
    local = BeamRunner(BeamOptions(), workers=2)
    assert local.grouping_options.view_as(DirectOptions).direct_running_mode == "in_memory"
    assert local.options.view_as(DirectOptions).direct_running_mode == "multi_threading"
    remote = BeamRunner(BeamOptions(pipeline_options=["--runner=DataflowRunner"]), workers=2)
    assert remote.grouping_options is remote.options

    rows = local.group_by_key(["a", "b", "c"], lambda part: [(part < "c", part)], lambda group: [sorted(group)])
    assert sorted(rows) == [["a", "b"], ["c"]]


def _sleep_and_time(index: int) -> dict[str, Any]:
    time.sleep(0.1)
    return {"index": index, "ended": time.monotonic()}


def test_the_worker_threads_report_each_unit_as_it_ends() -> None:
    """Six units of 0.1 s on two threads: the first results reach on_result while the last
    units still run, as the local engine's do, not once the pipeline is done."""
    runner = BeamRunner(BeamOptions(), workers=2)
    reported: list[float] = []
    results = runner.map(_sleep_and_time, list(range(6)), lambda result: reported.append(time.monotonic()))
    runner.close()
    assert sorted(result["index"] for result in results) == list(range(6))
    assert len(reported) == 6
    assert reported[0] < max(result["ended"] for result in results) - 0.1
