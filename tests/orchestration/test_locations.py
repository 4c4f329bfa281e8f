"""Inputs from any fsspec location, location attributes and per-file sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from audio_files import music_like, write_audio
from rich.console import Console

from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

QUIET = Console(file=open("/dev/null", "w"))


def job(inputs, output, **extra) -> CurateJob:
    return CurateJob.model_validate(
        {"inputs": inputs, "output": output, "segment": {"window_s": 3.0}, "runner": {"workers": 1}, **extra}
    )


def test_remote_inputs_and_outputs_give_the_same_clips(tmp_path):
    local = tmp_path / "in"
    for i in range(3):
        write_audio(local / f"piece {i}.flac", music_like(4, seed=i), 44100)
    memory = fsspec.filesystem("memory")
    for path in local.iterdir():
        memory.pipe(f"/corpus/{path.name}", path.read_bytes())
    curate(job([{"path": str(local)}], str(tmp_path / "out")), QUIET)
    curate(job([{"path": "memory://corpus"}], "memory://curated"), QUIET)
    here = pq.read_table(tmp_path / "out" / "clips").sort_by("clip_id")
    with memory.open("/curated/summary.json") as f:
        assert json.load(f)["clips_kept"] == here.num_rows
    there = pq.read_table("/curated/clips", filesystem=memory).sort_by("clip_id")
    assert there.column("clip_id") == here.column("clip_id")
    assert there.column("audio_flac") == here.column("audio_flac")
    assert all(uri.startswith("memory://") for uri in there.column("source_uri").to_pylist())


def test_location_attributes_and_sidecar_overrides(tmp_path):
    folder = tmp_path / "in"
    write_audio(folder / "plain.wav", music_like(4, seed=1), 44100)
    write_audio(folder / "Track 2.0 (Clean).wav", music_like(4, seed=2), 44100)
    (folder / "Track 2.0 (Clean).json").write_text(
        json.dumps(
            {
                "license": "CC-BY-NC-4.0",
                "split_hint": "valid",
                "tags": {"Title": "Clean Version", "genre": "field recording"},
                "description": "rain on a tin roof",
                "freesound_id": 1234,
            }
        )
    )
    curate(
        job(
            [{"path": str(folder), "source_name": "field", "license": "CC0-1.0", "split_hint": "train"}],
            str(tmp_path / "out"),
        ),
        QUIET,
    )
    rows = {Path(r["source_uri"]).name: r for r in pq.read_table(tmp_path / "out" / "clips").to_pylist()}
    plain, special = rows["plain.wav"], rows["Track 2.0 (Clean).wav"]
    assert (plain["source_name"], plain["license"], plain["split_hint"]) == ("field", "CC0-1.0", "train")
    assert (special["source_name"], special["license"], special["split_hint"]) == ("field", "CC-BY-NC-4.0", "valid")
    assert special["title"] == "Clean Version" and special["genre"] == "field recording"
    assert json.loads(special["metadata_json"]) == {"description": "rain on a tin roof", "freesound_id": 1234}
    assert plain["metadata_json"] is None
