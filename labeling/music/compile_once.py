"""Compile librosa's numba kernels once per machine before a worker analyses its first clip.

librosa compiles its numba functions on first use and caches them beside its code. Two worker
processes compiling the same `guvectorize` kernel at once can leave the cache's two files of
that kernel out of step (numba issue 10128), and a process that loads them calls a null
pointer: a worker of `soundry analyze` on a fresh install died so, once in three cold runs. One
analysis of a short made-up piece, under a lock every process of the machine shares, compiles
them in one process; the others wait, then load what it cached.
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile

import numpy as np

from labeling.music.analysis import analyze
from labeling.music.config import AnalysisSettings

LOCK_NAME = "soundry-librosa-compile.lock"


@functools.cache
def compile_kernels(settings: AnalysisSettings) -> None:
    """Once per process: analyse a made-up piece holding the machine-wide lock."""
    with open(os.path.join(tempfile.gettempdir(), LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            analyze(_made_up_piece(settings.sample_rate), settings)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _made_up_piece(rate: int, seconds: float = 8.0) -> np.ndarray:
    """Eight seconds of a C major triad over a C bass with a click every half second (120 bpm):
    a tempo, a key and chords, so every step of the analysis runs."""
    t = np.arange(int(seconds * rate)) / rate
    tones = sum(np.sin(2 * np.pi * f * t) for f in (65.41, 261.63, 329.63, 392.0)) * 0.1
    clicks = np.zeros_like(t)
    clicks[:: rate // 2] = 1.0
    clicks = np.convolve(clicks, np.exp(-np.arange(rate // 50) / (rate / 1000)), mode="same")
    return (tones + 0.3 * clicks).astype(np.float32)
