"""A clip's audio as CLAP takes it, and its windows' embeddings pooled back into one.

Noise2Music's recipe: 48 kHz mono, 10 s windows, the clip's embedding the mean of its
windows' embeddings, L2-normalized. A last window shorter than 10 s is padded the way
LAION's own inference pads short audio (repeated, then zeros), so the model sees what it
was trained on; a sliver of a tail (under min_last_window_s) is left out instead.
Windows travel as int16, LAION's own quantization of its training audio, at half the bytes.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile
import soxr

from labeling.clap.backend import SAMPLE_RATE, WINDOW_SAMPLES


def decode_mono_48k(flac: bytes) -> np.ndarray:
    """The clip's FLAC bytes -> float32 mono at 48 kHz."""
    audio, rate = soundfile.read(io.BytesIO(flac), dtype="float32", always_2d=True)
    # Indexing the two channels is many times faster than mean(axis=1) on (N, 2) arrays.
    mono = (audio[:, 0] + audio[:, 1]) * 0.5 if audio.shape[1] == 2 else audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def windows(mono: np.ndarray, min_last_window_s: float = 1.0) -> np.ndarray:
    """float32 mono -> (n, WINDOW_SAMPLES) int16; at least one window per clip."""
    count = max(1, -(-len(mono) // WINDOW_SAMPLES))
    tail = len(mono) - (count - 1) * WINDOW_SAMPLES
    if count > 1 and tail < min_last_window_s * SAMPLE_RATE:
        count -= 1
        mono = mono[: count * WINDOW_SAMPLES]
    out = np.zeros((count, WINDOW_SAMPLES), dtype=np.int16)
    quantized = (np.clip(mono, -1.0, 1.0) * 32767.0).astype(np.int16)  # LAION's float32_to_int16
    full = len(quantized) // WINDOW_SAMPLES
    out[:full] = quantized[: full * WINDOW_SAMPLES].reshape(full, WINDOW_SAMPLES)
    rest = quantized[full * WINDOW_SAMPLES :]
    if full < count and len(rest):
        repeated = np.tile(rest, WINDOW_SAMPLES // len(rest))
        out[full, : len(repeated)] = repeated
    return out


def to_float(windows_int16: np.ndarray) -> np.ndarray:
    """LAION's int16_to_float32."""
    return windows_int16.astype(np.float32) / 32767.0


def pool_windows(window_embeddings: np.ndarray, counts: list[int]) -> np.ndarray:
    """(sum(counts), D) -> (len(counts), D): each clip's windows averaged, then L2-normalized."""
    starts = np.cumsum([0, *counts[:-1]])
    means = np.add.reduceat(window_embeddings.astype(np.float64), starts, axis=0) / np.asarray(counts)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.maximum(norms, 1e-12)).astype(np.float32)
