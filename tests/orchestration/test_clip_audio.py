"""The clip table's audio is the source's: 16-bit sources already at the training format are
stored bit for bit, whichever decoder read them."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
from audio_files import music_like, write_audio
from rich.console import Console

from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

QUIET = Console(file=open("/dev/null", "w"))


@pytest.mark.parametrize("backend", ["soundfile", "pyav"])
def test_16_bit_sources_at_the_training_format_are_stored_bit_for_bit(tmp_path, backend):
    folder = tmp_path / "in"
    loud = np.clip(music_like(5, seed=3, level=0.9), -1, 1)  # samples above half scale, where 32767 and 32768 differ
    for name in ("a.wav", "b.flac"):
        write_audio(folder / name, loud, 44100, subtype="PCM_16")
    config = CurateJob.model_validate(
        {
            "inputs": [{"path": str(folder)}],
            "output": str(tmp_path / "out"),
            "runner": {"workers": 1},
            "segment": {"window_s": 2.0, "min_clip_s": 0.5},
            "filter": {"max_clipping_ratio": None},
            "decode": {"backend": backend},
        }
    )
    curate(config, QUIET)
    clips = pq.read_table(tmp_path / "out" / "clips").to_pylist()
    assert {row["source_uri"].rsplit("/", 1)[1] for row in clips} == {"a.wav", "b.flac"}
    for row in clips:
        source = soundfile.read(row["source_uri"], dtype="int16")[0]
        stored = soundfile.read(io.BytesIO(row["audio_flac"]), dtype="int16")[0]
        expected = source[row["start_sample"] : row["start_sample"] + row["num_samples"]]
        assert np.abs(expected).max() > 16384
        np.testing.assert_array_equal(stored, expected)


def test_every_clip_carries_its_source_timing(tmp_path):
    """Stable Audio's timing: seconds_start = floor(the clip's offset in its source), seconds_total
    = ceil(the source's duration), the same for every clip of a source, the last short one too."""
    folder = tmp_path / "in"
    write_audio(folder / "a.wav", music_like(7.3, seed=1), 44100)
    write_audio(folder / "b.flac", music_like(5.0, seed=2), 48000)
    config = CurateJob.model_validate(
        {
            "inputs": [{"path": str(folder)}],
            "output": str(tmp_path / "out"),
            "runner": {"workers": 1},
            "segment": {"window_s": 2.0, "min_clip_s": 0.5},
        }
    )
    curate(config, QUIET)
    clips = pq.read_table(tmp_path / "out" / "clips").to_pylist()
    timing = sorted(
        (row["source_uri"].rsplit("/", 1)[1], row["start_s"], row["seconds_start"], row["seconds_total"])
        for row in clips
    )
    assert timing == [
        ("a.wav", 0.0, 0, 8),
        ("a.wav", 2.0, 2, 8),
        ("a.wav", 4.0, 4, 8),
        ("a.wav", 6.0, 6, 8),
        ("b.flac", 0.0, 0, 5),
        ("b.flac", 2.0, 2, 5),
        ("b.flac", 4.0, 4, 5),
    ]
