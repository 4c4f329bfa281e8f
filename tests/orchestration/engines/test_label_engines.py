"""The labeling stage's engine steps on every engine: the model stage (CPU prepare, a model
loaded once per worker) and the global sum; then `soundry label` itself, which must write
the same label table, embeddings and caption frequencies on local, Ray and Beam.

One Ray is started for the whole module (seconds); the label jobs join it."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any

import cloudpickle
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from label_inputs import label_job_settings, write_clip_table, write_vocabularies
from rich.console import Console

from orchestration.configs.jobs import LabelJob
from orchestration.engines.base import ModelStage
from orchestration.jobs.label import label

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

# Workers cannot import this module by name: its functions and classes travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _ByValue:
    """A function of this module that pickles by value under any pickler (Ray's vendored one too)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return cloudpickle.loads, (cloudpickle.dumps(self.fn),)


def _square_payload(item: int) -> dict[str, int]:
    return {"item": item, "square": item * item, "prepared_in": os.getpid()}


class _Adder:
    """A 'model': built once per worker, remembers how many payloads it served."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.served = 0
        self.loaded_in = os.getpid()

    def __call__(self, payload: dict[str, int]) -> dict[str, Any]:
        self.served += 1
        return {
            "item": payload["item"],
            "value": payload["square"] + self.offset,
            "model": f"{self.loaded_in}-{id(self)}",
            "served": self.served,
        }


def _load_adder() -> _Adder:
    return _Adder(100)


def test_model_stage_prepares_then_runs_a_model_loaded_once_per_worker(runner):
    seen: list[dict] = []
    stage = ModelStage(prepare=_ByValue(_square_payload), load=_ByValue(_load_adder), workers=2)
    results = runner.map_model(stage, list(range(12)), seen.append)
    assert sorted(r["value"] for r in results) == [i * i + 100 for i in range(12)] and len(seen) == 12
    by_model: dict[str, list[int]] = {}
    for r in results:
        by_model.setdefault(r["model"], []).append(r["served"])
    # Each model instance counted its payloads from 1: it was built once, not per payload.
    assert all(sorted(served) == list(range(1, len(served) + 1)) for served in by_model.values())
    assert len(by_model) <= 2


class _Timed:
    """A 'model' that took a while to load and says when, in which process."""

    def __init__(self) -> None:
        start = time.monotonic()
        time.sleep(0.3)
        self.load = [os.getpid(), start, time.monotonic()]

    def __call__(self, payload: dict[str, int]) -> dict[str, Any]:
        return {"item": payload["item"], "load": self.load}


def test_a_process_loads_one_model_at_a_time(runner):
    """Libraries import lazily on first use, not always thread-safely (two threads of one
    process importing transformers' ClapModel at once fail): threads never load at once."""
    stage = ModelStage(prepare=_ByValue(_square_payload), load=_ByValue(_Timed), workers=2)
    results = runner.map_model(stage, list(range(6)), lambda _: None)
    assert sorted(r["item"] for r in results) == list(range(6))
    by_process: dict[int, list[tuple[float, float]]] = {}
    for pid, start, end in {tuple(r["load"]) for r in results}:
        by_process.setdefault(pid, []).append((start, end))
    for loads in by_process.values():
        loads.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(loads, loads[1:], strict=False))


def test_sum_by_key_is_the_same_on_every_engine(runner, tmp_path):
    parts = []
    for index, rows in enumerate(
        [
            [("tags", "a", 2), ("tags", "b", 1), ("llm", "a", 5)],
            [("tags", "a", 3), ("llm", "c", 1)],
            [("tags", "b", 4), ("tags", "a", 1)],
        ]
    ):
        vocab, caption, count = zip(*rows, strict=True)
        path = tmp_path / f"part-{index}.parquet"
        pq.write_table(
            pa.table({"vocab": list(vocab), "caption_id": list(caption), "count": pa.array(count, pa.int64())}), path
        )
        parts.append(str(path))
    table = runner.sum_by_key(parts, ["vocab", "caption_id"], "count")
    assert table.to_pylist() == [
        {"vocab": "llm", "caption_id": "a", "count": 5},
        {"vocab": "llm", "caption_id": "c", "count": 1},
        {"vocab": "tags", "caption_id": "a", "count": 6},
        {"vocab": "tags", "caption_id": "b", "count": 5},
    ]
    assert runner.sum_by_key([], ["vocab"], "count").num_rows == 0


@pytest.fixture(scope="module")
def labeled_on_every_engine(ray_runner, tmp_path_factory):
    root = tmp_path_factory.mktemp("label-engines")
    clips, vocab = write_clip_table(root / "curated"), write_vocabularies(root / "vocab")
    outputs = {}
    for engine in ("local", "ray", "beam"):
        # A cache of its own per engine, so that every engine embeds every clip itself; the
        # captions' vectors (a model stage like the clips', run by each engine above) are
        # copied from the local run, which spares each engine a model start.
        cache = root / engine / "cache"
        if engine != "local":
            for text_part in (root / "local" / "cache").glob("*/text/*.parquet"):
                target = cache / text_part.relative_to(root / "local" / "cache")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(text_part, target)
        # Local in one process (its worker pool is tested above); Ray and Beam with two workers.
        workers = 1 if engine == "local" else 2
        settings = label_job_settings(
            clips, vocab, root / engine / "labels", cache=str(cache), runner={"name": engine, "workers": workers}
        )
        summary = label(LabelJob.model_validate(settings), Console(file=open("/dev/null", "w")))
        assert summary["runner"] == engine and summary["windows_embedded"] == 6
        assert summary["captions_embedded"] == (18 if engine == "local" else 0)
        outputs[engine] = root / engine / "labels"
    return outputs


@pytest.mark.parametrize("engine", ["ray", "beam"])
@pytest.mark.parametrize("table", ["labels", "clip_embeddings", "caption_frequency.parquet"])
def test_same_labels_on_every_engine(labeled_on_every_engine, engine, table):
    def read(folder):
        data = pq.read_table(folder / table).to_pylist()
        return sorted(
            data,
            key=lambda r: (r.get("clip_id") or r.get("key") or "", r.get("vocab") or "", r.get("caption_id") or ""),
        )

    local, other = read(labeled_on_every_engine["local"]), read(labeled_on_every_engine[engine])
    assert len(local) >= 5 and local == other
