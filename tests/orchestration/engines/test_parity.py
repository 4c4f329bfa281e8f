"""The same input gives the same clip table on every engine: same rows, same bytes,
order aside (and the same rejects)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

pytestmark = pytest.mark.slow


def rows(path, table):
    data = pq.read_table(path / table).to_pylist()
    return sorted(data, key=lambda r: (r.get("clip_id") or "", r["source_uri"], r.get("reason") or ""))


@pytest.fixture(scope="module")
def curated(demo_corpus, tmp_path_factory):
    folder, _ = demo_corpus
    root = tmp_path_factory.mktemp("parity")
    outputs = {}
    for engine in ("local", "ray", "beam"):
        job = CurateJob.model_validate(
            {
                "inputs": [{"path": str(folder), "source_name": "demo", "license": "CC0-1.0"}],
                "output": str(root / engine),
                "segment": {"window_s": 5.0},
                "runner": {"name": engine, "workers": 2},
            }
        )
        summary = curate(job, Console(file=open("/dev/null", "w")))
        assert summary["runner"] == engine
        outputs[engine] = root / engine
    return outputs


@pytest.mark.parametrize("engine", ["ray", "beam"])
def test_same_clip_table_as_local(curated, engine):
    local, other = rows(curated["local"], "clips"), rows(curated[engine], "clips")
    assert len(local) > 10
    assert [r["clip_id"] for r in other] == [r["clip_id"] for r in local]
    for a, b in zip(local, other, strict=True):
        assert a == b, f"clip {a['clip_id']} differs on {engine}"


@pytest.mark.parametrize("engine", ["ray", "beam"])
def test_same_rejects_as_local(curated, engine):
    assert rows(curated[engine], "rejects") == rows(curated["local"], "rejects")


def test_demo_duplicate_found_on_every_engine(curated):
    for engine, path in curated.items():
        rejects = rows(path, "rejects")
        assert any(r["reason"] == "duplicate" for r in rejects), engine


@pytest.mark.parametrize("engine", ["ray", "beam"])
def test_same_duplicate_decision_as_local(curated, engine):
    def decision(path):
        rows = pq.read_table(path / "dedup.parquet").to_pylist()
        # A row names its clip part by URL, and each engine curated into a folder of its own.
        return sorted(
            (r["clip_id"], r["source_uri"], r["part"].rsplit("/", 1)[-1], r["duplicate_of"], r["duplicate_of_uri"])
            for r in rows
        )

    local = decision(curated["local"])
    assert local and decision(curated[engine]) == local


@pytest.mark.parametrize("engine", ["ray", "beam"])
def test_duplicates_are_recorded_in_the_same_order_as_local(curated, engine):
    # Not sorted here: the decision and its rejects part are written in one order on every engine.
    def in_order(path):
        decision = pq.read_table(path / "dedup.parquet").to_pylist()
        rejects = pq.read_table(path / "rejects" / "part-dedup.parquet").to_pylist()
        return [(r["clip_id"], r["source_uri"]) for r in decision], [r["clip_id"] for r in rejects]

    assert in_order(curated[engine]) == in_order(curated["local"])
