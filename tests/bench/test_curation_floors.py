"""bench/curation_floors.py on a real corpus's awkward files: what a floor cannot decode is
left out of it and counted, never a crash, and soundry's own run still gets every file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_files import encode, music_like, write_audio
from rich.console import Console

from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

RATE = 44100
FLOORS = Path(__file__).resolve().parents[2] / "bench" / "curation_floors.py"


@pytest.fixture(scope="module")
def floors():
    spec = importlib.util.spec_from_file_location("bench_curation_floors", FLOORS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """A short effect, FLAC in Ogg (libsndfile refuses it, FFmpeg decodes it), a FLAC whose
    frames are garbage (libsndfile refuses it, and soundry picks libsndfile for FLAC) and
    text named .ogg (FFmpeg cannot read it)."""
    root = tmp_path_factory.mktemp("awkward")
    write_audio(root / "good.wav", music_like(1.5), RATE)
    source = write_audio(root / "src" / "ogg.wav", music_like(1.5, seed=1), RATE)
    encode(source, root / "flac in ogg.ogg", "-c:a", "flac")
    (root / "src" / "ogg.wav").unlink()
    (root / "src").rmdir()
    good = (root / "good.wav").read_bytes()
    write_audio(root / "garbage frames.flac", music_like(1.5, seed=2), RATE)
    head = (root / "garbage frames.flac").read_bytes()[:2000]
    (root / "garbage frames.flac").write_bytes(head + np.random.default_rng(0).bytes(len(good)))
    (root / "notes.ogg").write_text("not audio\n" * 50)
    return root


@pytest.mark.slow  # ffmpeg processes and a curate run
def test_floors_count_what_they_cannot_decode(floors, awkward, tmp_path):
    files = floors.audio_files(awkward)
    items, not_audio = floors.sources(files)
    assert not_audio == 1 and len(items) == 3
    backends = {Path(item.path).name: item.backend for item in items}
    assert backends == {"good.wav": "soundfile", "flac in ogg.ogg": "pyav", "garbage frames.flac": "soundfile"}

    decoded, seconds, refused = floors.decode_only(items)  # libsndfile alone: refuses two
    assert (decoded, refused) == (1, 2) and seconds == pytest.approx(1.5)
    decoded, seconds, refused = floors.decode_resample_encode(items)  # soundry's decoders: refuse one
    assert (decoded, refused) == (2, 1) and seconds == pytest.approx(3.0, abs=0.01)
    floor = floors.in_process_floor(items, 1, floors.decode_resample_encode)
    assert (floor.files, floor.refused) == (2, 1)
    cli = floors.ffmpeg_floor(items, 1, tmp_path / "floor")
    assert cli.files + cli.refused == 3 and cli.files >= 2

    job = CurateJob.model_validate(
        {"inputs": [{"path": str(awkward)}], "output": str(tmp_path / "out"), "segment": {"min_clip_s": 0.5}}
    )
    summary = curate(job, Console(quiet=True))
    assert summary["files_in"] == 4
    assert summary["clips_kept"] == 2
    assert summary["files_rejected"] == {"decode_error": 1, "not_audio": 1}
