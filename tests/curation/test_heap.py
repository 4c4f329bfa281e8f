"""Freed arrays stay in the heap for the next clip instead of costing fresh pages."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from audio_files import music_like, write_audio

# Runs in a fresh process: how glibc serves an allocation depends on the heap's history,
# and a test process has a long one.
_WORKER = """
import json, resource, sys
import numpy as np
from curation.config import AudioFormat, Decoding
from curation.decode import choose_backend, decode
from curation.encode import encode_flac, pcm_sha256, quantize_pcm16
from curation.heap import retain_freed_memory
from curation.measure import measure
from curation.probe import probe

def faults_per_file(paths):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for path in paths:
        facts = probe(path)
        pcm = np.concatenate(list(decode(path, facts, choose_backend(facts, Decoding()), Decoding(), AudioFormat())))
        measure(pcm, 44100)
        pcm16 = quantize_pcm16(pcm)
        pcm_sha256(pcm16)
        encode_flac(pcm16, 44100)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(paths)

paths = sys.argv[1:]
faults_per_file(paths)  # imports and first-use allocations
default = faults_per_file(paths)
retained = retain_freed_memory() and retain_freed_memory()
faults_per_file(paths)  # the heap grows to what one file needs
# The better of two passes: files of other sizes now and then leave a hole no later block fits, and
# the heap grows once more (a few hundred pages, once); without retention every pass faults.
with_retention = min(faults_per_file(paths) for _ in range(2))
print(json.dumps({"default": default, "retained": retained, "with_retention": with_retention}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libc.so" not in (ctypes.util.find_library("c") or ""),
    reason="mallopt thresholds are glibc's",
)
def test_short_files_cost_no_fresh_pages(tmp_path):
    paths = [
        str(write_audio(tmp_path / f"sfx{i}.{'wav' if i % 2 else 'flac'}", music_like(1 + i % 3, rate, seed=i), rate))
        for i, rate in enumerate([44100, 48000] * 6)
    ]
    repository = Path(__file__).resolve().parents[2]
    result = json.loads(
        subprocess.run(
            [sys.executable, "-c", _WORKER, *paths], cwd=repository, check=True, capture_output=True, text=True
        ).stdout
    )
    assert result["retained"]
    # glibc's defaults map or trim these blocks afresh for every file (~400 faults of 4 KB);
    # with the freed pages kept, a file reuses what the one before it freed.
    assert result["default"] > 100
    assert result["with_retention"] < 10
