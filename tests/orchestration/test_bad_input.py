"""The bad-input zoo: every file is curated correctly or rejected with a clear reason,
and nothing crashes or goes missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from audio_files import encode, music_like, write_audio
from rich.console import Console

from curation.encode import decode_flac, pcm_sha256
from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

RATE = 44100


def build_zoo(root: Path) -> dict[str, tuple[str, str | None]]:
    """Files and their expected fate: ("kept", None) or ("rejected", reason)."""
    root.mkdir(parents=True)
    fate: dict[str, tuple[str, str | None]] = {}

    def kept(path: Path) -> None:
        fate[path.name] = ("kept", None)

    def rejected(path: Path, reason: str) -> None:
        fate[path.name] = ("rejected", reason)

    good = write_audio(root / "good.wav", music_like(6), RATE)
    kept(good)
    kept(write_audio(root / "mono.wav", music_like(6, channels=1, seed=1), RATE))
    kept(write_audio(root / "six channels.wav", music_like(6, channels=6, seed=2), RATE))
    kept(write_audio(root / "telephone 8k.wav", music_like(6, rate=8000, seed=3), 8000))
    kept(write_audio(root / "hires 192k.flac", music_like(6, rate=192000, seed=4), 192000))
    kept(
        encode(
            write_audio(root / "src" / "a.wav", music_like(6, seed=5), RATE),
            root / "Track 2.0 (Clean).mp3",
            "-b:a",
            "192k",
        )
    )
    kept(
        encode(
            write_audio(root / "src" / "b.wav", music_like(6, seed=6), RATE),
            root / "-leading dash.ogg",
            "-c:a",
            "libvorbis",
        )
    )
    kept(write_audio(root / "spaces ünïcödé ♫.flac", music_like(6, seed=7), RATE))
    kept(write_audio(root / 'quote\'s "double".wav', music_like(6, seed=8), RATE))
    kept(
        encode(write_audio(root / "src" / "c.wav", music_like(6, seed=9), RATE), root / "aac in mp4.m4a", "-c:a", "aac")
    )
    kept(
        encode(
            write_audio(root / "src" / "d.wav", music_like(6, seed=10), RATE), root / "voice.opus", "-c:a", "libopus"
        )
    )
    shutil.rmtree(root / "src")

    (root / "empty.wav").write_bytes(b"")
    rejected(root / "empty.wav", "empty_file")
    (root / "notes.mp3").write_text("these are not the sounds you are looking for\n" * 20)
    rejected(root / "notes.mp3", "not_audio")
    (root / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(50_000))
    rejected(root / "corrupt.flac", "not_audio")
    rejected(write_audio(root / "blip.wav", music_like(0.1, seed=11), RATE), "too_short")
    rejected(write_audio(root / "silence.wav", np.zeros((RATE * 6, 2), np.float32), RATE), "silent")
    broken = music_like(6, seed=12)
    broken[1000:1100] = np.nan
    broken[5 * RATE] = np.inf  # NaN in the first window, inf in the second
    rejected(write_audio(root / "nan and inf.wav", broken, RATE, subtype="FLOAT"), "non_finite")
    rejected(write_audio(root / "bad sidecar.wav", music_like(6, seed=13), RATE), "bad_sidecar")
    (root / "bad sidecar.json").write_text("{not json")
    # a WAV cut mid-stream: the header promises more than the file holds
    whole = write_audio(root / "whole.wav", music_like(6, seed=14), RATE).read_bytes()
    (root / "whole.wav").unlink()
    (root / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    kept(root / "truncated.wav")
    return fate


@pytest.fixture(scope="module")
def curated_zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    fate = build_zoo(root / "in")
    job = CurateJob.model_validate(
        {
            "inputs": [{"path": str(root / "in"), "source_name": "zoo", "license": "CC0-1.0"}],
            "output": str(root / "out"),
            "segment": {"window_s": 4.0, "min_clip_s": 1.0},
            "runner": {"name": "local", "workers": 2},
        }
    )
    summary = curate(job, Console(file=open("/dev/null", "w")))
    clips = pq.read_table(root / "out" / "clips")
    rejects = pq.read_table(root / "out" / "rejects")
    return root, fate, summary, clips, rejects


def test_every_file_has_its_expected_fate(curated_zoo):
    root, fate, _, clips, rejects = curated_zoo
    kept = {Path(uri).name for uri in clips.column("source_uri").to_pylist()}
    reasons: dict[str, set[str]] = {}
    for row in rejects.to_pylist():
        reasons.setdefault(Path(row["source_uri"]).name, set()).add(row["reason"])
    for name, (outcome, reason) in fate.items():
        if outcome == "kept":
            assert name in kept, f"{name} was not kept; rejects say {reasons.get(name)}"
        else:
            assert name not in kept, f"{name} should have been rejected as {reason}"
            assert reason in reasons.get(name, set()), f"{name}: expected {reason}, got {reasons.get(name)}"
    assert kept | set(reasons) >= set(fate), "some input files are neither kept nor rejected"


def test_reject_rows_explain_themselves(curated_zoo):
    _, _, _, _, rejects = curated_zoo
    for row in rejects.to_pylist():
        assert row["detail"] and row["step"] and row["reason"]
    corrupt = [r for r in rejects.to_pylist() if r["source_uri"].endswith("corrupt.flac")]
    assert corrupt[0]["step"] == "probe"
    sidecar = [r for r in rejects.to_pylist() if r["reason"] == "bad_sidecar"]
    assert "bad sidecar.json" in sidecar[0]["detail"] and "fix or remove" in sidecar[0]["detail"]


def test_odd_formats_become_the_training_format(curated_zoo):
    _, _, _, clips, _ = curated_zoo
    for row in clips.to_pylist():
        pcm, rate = decode_flac(row["audio_flac"])
        assert rate == RATE and pcm.shape[1] == 2
        assert len(pcm) == row["num_samples"]
        assert pcm_sha256(pcm) == row["pcm_sha256"]  # the duplicate key is the stored audio
    by_name = {Path(r["source_uri"]).name: r for r in clips.to_pylist()}
    assert by_name["six channels.wav"]["source_channels"] == 6
    assert by_name["telephone 8k.wav"]["source_sample_rate"] == 8000
    assert by_name["telephone 8k.wav"]["bandwidth_hz"] < 4500
    assert by_name["hires 192k.flac"]["source_sample_rate"] == 192000
    assert by_name["mono.wav"]["mono_as_stereo"] is True
    assert by_name["good.wav"]["mono_as_stereo"] is False
    assert by_name["good.wav"]["license"] == "CC0-1.0" and by_name["good.wav"]["source_name"] == "zoo"


def test_summary_counts_match_the_tables(curated_zoo):
    root, fate, summary, clips, rejects = curated_zoo
    assert summary["files_in"] == len(fate)
    assert summary["clips_kept"] == clips.num_rows
    file_level = [r for r in rejects.to_pylist() if r["clip_id"] is None]
    assert sum(summary["files_rejected"].values()) == len(file_level)
    assert json.loads((root / "out" / "summary.json").read_text())["clips_kept"] == clips.num_rows
