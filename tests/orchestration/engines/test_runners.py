"""Every engine runs the same work units, groups the same pairs and finds the same duplicates.

One Ray is started for the whole module (it takes seconds); a Beam pipeline per test.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import cloudpickle
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.core.storage import read_table
from curation.dedup import decide_group, read_members
from curation.discover import PlannedFile, WorkUnit
from orchestration.engines.config import RunnerConfig
from orchestration.engines.registry import make_runner
from orchestration.jobs import curate, shard

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]

# Worker processes cannot import this module by name (another distribution installs a
# top-level `tests` package), so its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _ByValue:
    """Makes a function of this module picklable by plain pickle too (the local runner)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> Any:
        return self.fn(item)

    def __reduce__(self) -> tuple[Any, ...]:
        return cloudpickle.loads, (cloudpickle.dumps(self.fn),)


def _write_marker(folder: str, unit: WorkUnit) -> dict[str, Any]:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{unit.id}.json"), "w") as f:
        json.dump({"uri": unit.files[0].uri}, f)
    return {"item": unit.id, "files": len(unit.files)}


def _fail_on_unit_3(unit: WorkUnit) -> dict[str, Any]:
    if unit.id == "unit-3":
        raise ValueError("unit-3 is unreadable: truncated header")
    return {"item": unit.id}


def _digest_and_clip(part: str) -> list[tuple[str, str]]:
    table = read_table(part, columns=["pcm_sha256", "clip_id"]).to_pydict()
    return list(zip(table["pcm_sha256"], table["clip_id"], strict=True))


def _loaded(module: str, unit: WorkUnit) -> bool:
    return module in sys.modules


def _where(item: int) -> dict[str, Any]:
    return {"item": item, "pid": os.getpid()}


def _members(clip_ids: list[str]) -> list[dict[str, Any]]:
    return [{"members": sorted(clip_ids)}]


def _units(count: int) -> list[WorkUnit]:
    return [WorkUnit(f"unit-{i}", (PlannedFile(f"/corpus/file-{i}.wav", 100 + i, 0),)) for i in range(count)]


@pytest.fixture
def parts(tmp_path: Any) -> list[str]:
    """Three clip parts: duplicate groups within a part, across two and across three
    parts, and one clip found under two source paths (identical source files)."""
    rows = [
        # (pcm_sha256, clip_id, source_uri)
        [
            ("h-a", "c-1", "/src/a.wav"),
            ("h-b", "c-2", "/src/a.wav"),
            ("h-b", "c-3", "/src/b.wav"),
            ("h-u1", "c-4", "/src/b.wav"),
        ],
        [("h-a", "c-1", "/mirror/a.wav"), ("h-c", "c-5", "/src/c.wav"), ("h-u2", "c-6", "/src/c.wav")],
        [
            ("h-c", "c-0", "/src/d.wav"),
            ("h-c", "c-7", "/src/e.wav"),
            ("h-u3", "c-8", "/src/e.wav"),
            ("h-a", "c-9", "/src/f.wav"),
        ],
    ]
    paths = []
    for index, part_rows in enumerate(rows):
        digests, clip_ids, uris = zip(*part_rows, strict=True)
        table = pa.table(
            {
                "pcm_sha256": list(digests),
                "clip_id": list(clip_ids),
                "source_uri": list(uris),
                "audio_flac": pa.array([b"\0" * 256] * len(part_rows), pa.binary()),
            }
        )
        path = tmp_path / "clips" / f"part-{index:05d}.parquet"
        path.parent.mkdir(exist_ok=True)
        pq.write_table(table, path)
        paths.append(str(path))
    # The rows must name a part by exactly the string given, URL scheme included.
    paths[1] = f"file://{paths[1]}"
    return paths


def test_map_runs_every_unit_once(runner: Any, tmp_path: Any) -> None:
    units = _units(6)
    folder = str(tmp_path / "out")
    seen: list[dict[str, Any]] = []
    results = runner.map(_ByValue(functools.partial(_write_marker, folder)), units, seen.append)
    assert sorted(result["item"] for result in results) == sorted(unit.id for unit in units)
    assert all(result["files"] == 1 for result in results)
    assert sorted(seen, key=lambda r: r["item"]) == sorted(results, key=lambda r: r["item"])
    assert sorted(os.listdir(folder)) == sorted(f"{unit.id}.json" for unit in units)


def test_group_by_key_reduces_every_key_once(runner: Any, parts: list[str]) -> None:
    groups = runner.group_by_key(parts, _ByValue(_digest_and_clip), _ByValue(_members))
    assert sorted(group["members"] for group in groups) == [
        ["c-0", "c-5", "c-7"],
        ["c-1", "c-1", "c-9"],
        ["c-2", "c-3"],
        ["c-4"],
        ["c-6"],
        ["c-8"],
    ]


def test_duplicates_are_the_same_on_every_engine(runner: Any, parts: list[str]) -> None:
    # The fixture's groups: h-a (3 members over 3 parts), h-b (2), h-c (3 over 2 parts); each
    # keeps its smallest (clip_id, source_uri), and a row names its part as given, URL and all.
    expected = [
        ("c-1", "/src/a.wav", parts[0], "c-1", "/mirror/a.wav"),
        ("c-3", "/src/b.wav", parts[0], "c-2", "/src/a.wav"),
        ("c-5", "/src/c.wav", parts[1], "c-0", "/src/d.wav"),
        ("c-7", "/src/e.wav", parts[2], "c-0", "/src/d.wav"),
        ("c-9", "/src/f.wav", parts[2], "c-1", "/mirror/a.wav"),
    ]
    found = runner.group_by_key(parts, read_members, decide_group)
    columns = ("clip_id", "source_uri", "part", "duplicate_of", "duplicate_of_uri")
    assert sorted(tuple(row[c] for c in columns) for row in found) == expected
    assert parts[1].startswith("file://")


def test_map_few_runs_on_the_workers_where_a_task_is_cheap(runner: Any) -> None:
    # The local engine's and Ray's workers are warm processes a task away; Beam's local workers
    # are threads of this process, and a map there would be a pipeline to start.
    on_workers = runner.name != "beam"
    for items in ([7], [3, 1, 2]):  # one item too: map keeps a lone unit in this process
        results = runner.map_few(_ByValue(_where), items)
        assert [result["item"] for result in results] == items
        assert [result["pid"] != os.getpid() for result in results] == [on_workers] * len(items)
    assert runner.map_few(_ByValue(_where), []) == []


def test_failure_in_a_unit_fails_the_job(runner: Any) -> None:
    with pytest.raises(Exception, match="unit-3 is unreadable: truncated header"):
        runner.map(_ByValue(_fail_on_unit_3), _units(5), lambda result: None)


def test_nothing_to_do(runner: Any) -> None:
    assert runner.map(_ByValue(_fail_on_unit_3), [], lambda result: None) == []
    assert runner.group_by_key([], read_members, decide_group) == []


@pytest.mark.parametrize(("job", "work"), [(curate, "_run_unit_dict"), (shard, "_write_shard_dict")])
def test_a_jobs_workers_hold_what_they_run_before_their_first_unit(job: Any, work: str) -> None:
    # A job's workers run a function of the job's module: unpickling it at the first unit would
    # import the module there (66 ms for curation's, 0.38 s for the shards'), inside the timed work.
    module = getattr(job, work).__module__
    runner = make_runner(RunnerConfig(name="local", workers=2), job.WORKER_IMPORTS)
    try:
        loaded = runner.map(_ByValue(functools.partial(_loaded, module)), _units(4), lambda result: None)
    finally:
        runner.close()
    assert loaded == [True] * 4
