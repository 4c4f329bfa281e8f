"""A run killed with kill -9 at any point and started again ends with exactly the clip
set of an uninterrupted run: nothing lost, nothing twice, finished units not redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ARGS = ["--segment.window_s", "5", "--units.min_units", "12", "--runner.workers"]


def soundry(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kwargs,
    )


def clip_set(output: Path) -> list[tuple[str, str, str]]:
    table = pq.read_table(output / "clips", columns=["clip_id", "source_uri", "pcm_sha256"])
    return sorted(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


@pytest.fixture(scope="module")
def reference(demo_corpus, tmp_path_factory):
    folder, _ = demo_corpus
    output = tmp_path_factory.mktemp("uninterrupted") / "out"
    process = soundry("curate", str(folder), "--output", str(output), *ARGS, "2")
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    return clip_set(output)


@pytest.mark.parametrize("workers,kill_after_parts", [("1", 3), ("2", 5)])
def test_kill_9_midway_then_resume(demo_corpus, reference, tmp_path, workers, kill_after_parts):
    folder, _ = demo_corpus
    output = tmp_path / "out"
    process = soundry("curate", str(folder), "--output", str(output), *ARGS, workers)
    deadline = time.time() + 300
    while len(list((output / "clips").glob("part-*.parquet"))) < kill_after_parts:
        assert process.poll() is None, "the run ended before it could be killed; make the corpus larger"
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and every worker, mid-write
    process.wait()
    done_before = {p.name for p in (output / "clips").glob("part-*.parquet")}
    assert not (output / "summary.json").exists()

    again = soundry("curate", str(folder), "--output", str(output), *ARGS, workers)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    summary = json.loads((output / "summary.json").read_text())
    assert summary["units_resumed"] >= len(done_before) >= kill_after_parts
    result = clip_set(output)
    assert result == reference
    assert len({clip_id for clip_id, _, _ in result}) == len(result)
    assert not [p for p in output.rglob("*") if ".tmp" in p.name], "temporaries left behind"


def test_other_config_in_same_output_is_refused(demo_corpus, tmp_path):
    folder, _ = demo_corpus
    output = tmp_path / "out"
    first = soundry("curate", str(folder), "--output", str(output), "--segment.window_s", "5", "--units.min_units", "1")
    assert first.wait(timeout=300) == 0
    second = soundry(
        "curate", str(folder), "--output", str(output), "--segment.window_s", "6", "--units.min_units", "1"
    )
    assert second.wait(timeout=300) == 2
    assert "differs in: segment.window_s" in second.stderr.read().decode()
