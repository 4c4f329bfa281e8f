"""The curation job has its engine's workers rewrite the parts that hold duplicates."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from audio_files import music_like, write_audio
from rich.console import Console

from curation.core.storage import read_table
from orchestration.configs.jobs import CurateJob
from orchestration.engines.local_runner import LocalRunner
from orchestration.jobs.curate import curate


def test_the_parts_holding_duplicates_are_rewritten_by_the_engine(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    pcm = np.round(music_like(4.0, seed=3) * 32767).astype(np.int16)  # stored exactly by both formats
    write_audio(corpus / "a.wav", pcm, 44100, "PCM_16")
    write_audio(corpus / "b.flac", pcm, 44100, "PCM_16")  # the same samples: a duplicate clip
    write_audio(corpus / "c.wav", music_like(4.0, seed=4), 44100, "PCM_16")
    handed: list[list[Any]] = []
    map_few = LocalRunner.map_few

    def recorded(runner: LocalRunner, fn: Any, items: list[Any]) -> list[Any]:
        handed.append(list(items))
        return map_few(runner, fn, items)

    monkeypatch.setattr(LocalRunner, "map_few", recorded)
    output = tmp_path / "out"
    job = CurateJob.model_validate(
        {
            "inputs": [{"path": str(corpus)}],
            "output": str(output),
            "units": {"min_units": 3},
            "runner": {"name": "local", "workers": 2},
        }
    )
    curate(job, Console(file=io.StringIO()))
    decision = read_table(str(output / "dedup.parquet")).to_pylist()
    assert [row["source_uri"].rsplit("/", 1)[-1] for row in decision] == ["b.flac"]
    # One part to rewrite, handed to the engine (whose workers, for the local engine, are
    # processes of their own: test_runners.py), and rewritten without the duplicate.
    assert handed == [[(decision[0]["part"], [(decision[0]["clip_id"], decision[0]["source_uri"])])]]
    assert read_table(decision[0]["part"], columns=["clip_id"]).num_rows == 0
    clips = read_table(str(output / "clips"), columns=["source_uri"]).column("source_uri").to_pylist()
    assert sorted(uri.rsplit("/", 1)[-1] for uri in clips) == ["a.wav", "c.wav"]
