"""The curation job hands its units to the engine heaviest first (by estimated cost, not bytes)."""

from __future__ import annotations

import io
import os

from audio_files import music_like, write_audio
from rich.console import Console

from curation.core.storage import read_table
from curation.discover import heaviest_first, plan_from_table
from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate


def test_units_run_heaviest_first(tmp_path):
    corpus = tmp_path / "corpus"
    # In plan order (by name) the WAV, the most bytes, comes first; per byte, the FLAC and the
    # Vorbis file hold more seconds and cost more to curate.
    for index, (name, subtype) in enumerate([("a.wav", "PCM_16"), ("b.flac", "PCM_16"), ("c.ogg", "VORBIS")]):
        write_audio(corpus / name, music_like(4.0, seed=index), 44100, subtype)
    output = tmp_path / "out"
    job = CurateJob.model_validate(
        {
            "inputs": [{"path": str(corpus)}],
            "output": str(output),
            "units": {"min_units": 3},
            "runner": {"name": "local", "workers": 1},  # one at a time, in the order handed out
        }
    )
    curate(job, Console(file=io.StringIO()))
    plan = plan_from_table(read_table(str(output / "plan.parquet")))
    expected = [unit.id for unit in heaviest_first(plan)]
    assert expected != [unit.id for unit in plan]
    # Each unit's stats are written as it ends: their times give the order the units ran in.
    finished = sorted(expected, key=lambda unit: os.stat(output / "stats" / f"part-{unit}.json").st_mtime_ns)
    assert finished == expected
