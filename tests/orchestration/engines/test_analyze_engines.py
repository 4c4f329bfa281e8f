"""`soundry analyze` writes the same facts on local, Ray and Beam."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from music_signals import write_music_clip_table
from rich.console import Console

from orchestration.configs.jobs import AnalyzeJob
from orchestration.jobs.analyze import analyze_clips

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
QUIET = Console(file=open("/dev/null", "w"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_music_clip_table(tmp_path_factory.mktemp("analyze-engines"))


def _facts(clips: str, output, engine: str, **runner) -> list[dict]:
    job = {"clips": clips, "output": str(output), "clips_per_unit": 2, "runner": {"name": engine, **runner}}
    analyze_clips(AnalyzeJob.model_validate(job), QUIET)
    return sorted(pq.read_table(output / "analysis").to_pylist(), key=lambda r: r["clip_id"])


def test_every_engine_writes_the_same_facts(clips, tmp_path, ray_runner):
    local = _facts(clips, tmp_path / "local", "local", workers=1)
    assert _facts(clips, tmp_path / "ray", "ray", workers=2) == local
    assert _facts(clips, tmp_path / "beam", "beam", workers=2) == local
