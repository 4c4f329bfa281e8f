"""Per-clip audio quality measures: level, loudness, clipping, silence, bandwidth, fake stereo.

Every clip of the corpus goes through `measure`, so each measure is a handful of vectorized
passes over the PCM; the K-weighting filter for loudness (curation/loudness.py) is the only
sequential pass, and the bandwidth's frames are gathered by a compiled loop, not by numpy's
strided copies.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numba
import numpy as np
import scipy.fft

from curation.loudness import FLOOR_DB, integrated_loudness

CLIP_LEVEL = 0.999
SILENCE_FRAME_S = 0.05
SILENCE_MEAN_SQUARE = 1e-6  # -60 dBFS RMS
MONO_AS_STEREO_TOLERANCE = 1e-4  # of the peak
MONO_AS_STEREO_HEAD = 4096  # samples compared before the rest of the clip

# Bandwidth: highest bin within 70 dB of the spectral peak and above an absolute floor.
BANDWIDTH_FFT = 4096
BANDWIDTH_MAX_FRAMES = 64  # evenly spaced, so the cost does not grow with the clip
BANDWIDTH_RANGE = 10.0 ** (-70.0 / 10.0)
BANDWIDTH_FLOOR = 10.0 ** (-130.0 / 10.0)  # 0 dB is a full-scale sine's peak bin


@dataclasses.dataclass(frozen=True)
class QualityMeasures:
    peak_dbfs: float  # FLOOR_DB for digital silence, as are rms_dbfs and lufs
    rms_dbfs: float
    lufs: float  # BS.1770-4 integrated; FLOOR_DB when gated out or shorter than one block
    clipping_ratio: float  # of all samples, at |x| >= CLIP_LEVEL
    silence_ratio: float  # of 50 ms frames below -60 dBFS RMS; a partial last frame counts
    bandwidth_hz: float  # catches upsampled and low-bitrate sources; 0.0 for silence
    mono_as_stereo: bool  # two channels carrying one signal; False for mono
    finite: bool  # False: a sample was NaN or inf, and every other field is its floor

    def to_row(self) -> dict[str, float | bool]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "finite"}


def measure(pcm: np.ndarray, sample_rate: int) -> QualityMeasures:
    """Measure one clip: `pcm` is (num_samples, channels) float32 with 1 or 2 channels."""
    x = np.ascontiguousarray(pcm, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"expected (num_samples > 0, 1 or 2 channels) PCM, got shape {x.shape}")
    # The peak is needed anyway, and NaN or inf in any sample reaches it: one check covers all.
    peak = float(np.uint32(abs_max_bits(x.reshape(-1).view(np.uint32))).view(np.float32))
    if not math.isfinite(peak):
        return QualityMeasures(FLOOR_DB, FLOOR_DB, FLOOR_DB, 0.0, 0.0, 0.0, False, False)

    mean_square, silence_ratio = _level_and_silence(x, sample_rate)
    clipping_ratio = 0.0
    if peak >= CLIP_LEVEL:  # the count below needs a full pass; most clips never get near
        clipping_ratio = np.count_nonzero(np.abs(x) >= CLIP_LEVEL) / x.size
    mono_as_stereo = x.shape[1] == 2 and _channels_agree(x, MONO_AS_STEREO_TOLERANCE * max(peak, 1e-9))
    return QualityMeasures(
        peak_dbfs=_db(peak * peak),
        rms_dbfs=_db(mean_square),
        lufs=integrated_loudness(x, sample_rate),
        clipping_ratio=float(clipping_ratio),
        silence_ratio=silence_ratio,
        bandwidth_hz=_bandwidth(x, sample_rate),
        mono_as_stereo=bool(mono_as_stereo),
        finite=True,
    )


def _channels_agree(x: np.ndarray, tolerance: float) -> bool:
    """Whether the two channels differ nowhere by more than `tolerance`. Most stereo clips
    differ within their first samples, so those are looked at first: the same answer as one
    pass over the clip, without the pass (a millisecond for 30 s)."""
    for part in (x[:MONO_AS_STEREO_HEAD], x[MONO_AS_STEREO_HEAD:]):
        diff = part[:, 0] - part[:, 1]
        if diff.size and float(max(diff.max(), -diff.min())) > tolerance:
            return False
    return True


def _db(power: float) -> float:
    return 10.0 * math.log10(power) if power > 10.0 ** (FLOOR_DB / 10.0) else FLOOR_DB


def _level_and_silence(x: np.ndarray, rate: int) -> tuple[float, float]:
    """Mean square over the clip, and the fraction of 50 ms frames below -60 dBFS RMS."""
    frame = max(1, round(SILENCE_FRAME_S * rate)) * x.shape[1]
    flat = x.reshape(-1)  # frames of interleaved samples are contiguous runs of `flat`
    full = flat.size // frame * frame
    body = flat[:full].reshape(-1, frame)
    energy = np.einsum("ij,ij->i", body, body).astype(np.float64)
    tail = flat[full:]
    silent = np.count_nonzero(energy < SILENCE_MEAN_SQUARE * frame)
    total = float(energy.sum())
    frames = energy.size
    if tail.size:
        tail_energy = float(np.dot(tail, tail))
        silent += tail_energy < SILENCE_MEAN_SQUARE * tail.size
        total += tail_energy
        frames += 1
    return total / flat.size, silent / frames


def _bandwidth(x: np.ndarray, rate: int) -> float:
    """Highest frequency of the mix's averaged Hann spectrum within 70 dB of its peak."""
    n = x.shape[0]
    length = min(BANDWIDTH_FFT, n)
    # Frames side by side: overlapping Hann frames would add cost, not independent estimates.
    count = min(BANDWIDTH_MAX_FRAMES, n // length)
    starts = np.linspace(0, n - length, count).astype(np.intp)
    window, scale = _hann(length, x.shape[1])
    mix = np.empty((count, length), np.float32)
    windowed_mix(x, starts, window, mix)  # twice the mean of two channels: scaled below
    spectrum = scipy.fft.rfft(mix, n=BANDWIDTH_FFT, axis=1).view(np.float32)  # (count, 2 * bins) re, im
    power = np.einsum("ij,ij->j", spectrum, spectrum)  # summed over frames
    power = (power[0::2] + power[1::2]) * (scale / count)
    top = float(power.max())
    if top <= BANDWIDTH_FLOOR:
        return 0.0
    above = np.flatnonzero(power > max(top * BANDWIDTH_RANGE, BANDWIDTH_FLOOR))
    return float(above[-1] * rate / BANDWIDTH_FFT)


# Compiled when the module is imported (from numba's cache), as the loudness kernel is.
@numba.njit("uint32(uint32[::1])", cache=True, nogil=True)
def abs_max_bits(bits: np.ndarray) -> int:
    """The largest |x| of float32 samples given as their bit patterns, as a bit pattern: with
    the sign bit cleared, the patterns of floats order as the floats do, NaN above infinity above
    every finite value, so this is max(x.max(), -x.min()) exactly, NaN and infinity included,
    in one pass of integer maxima (which the compiler vectorizes; a float maximum it may only
    vectorize under fast-math, which may drop the NaN). numpy's two passes cost twice as much:
    0.43 against 0.83 ms for 30 s of stereo."""
    top = np.uint32(0)
    for i in range(bits.shape[0]):
        top = max(top, bits[i] & np.uint32(0x7FFFFFFF))
    return top


@numba.njit(
    numba.void(
        numba.float32[:, ::1],
        numba.intp[::1],
        numba.types.Array(numba.float32, 1, "C", readonly=True),
        numba.float32[:, ::1],
    ),
    cache=True,
    nogil=True,
)
def windowed_mix(x: np.ndarray, starts: np.ndarray, window: np.ndarray, out: np.ndarray) -> None:
    """Row k of `out`: the frame of `x` at `starts[k]`, its channels summed, times `window`, in
    float32, each sum and product rounded as numpy rounds them (the frames gathered and summed
    by numpy cost a third of the bandwidth measure: strided copies and adds)."""
    length = window.shape[0]
    stereo = x.shape[1] == 2
    for k in range(starts.shape[0]):
        start = starts[k]
        for j in range(length):
            sample = x[start + j, 0] + x[start + j, 1] if stereo else x[start + j, 0]
            out[k, j] = sample * window[j]


@functools.cache
def _hann(length: int, channels: int) -> tuple[np.ndarray, float]:
    """The analysis window (no zero end points) and the power scale that makes a full-scale
    sine read 1 (0 dB) in its peak bin, with the mix's factor 1/2 for two channels."""
    window = np.hanning(length + 2)[1:-1].astype(np.float32)
    window.flags.writeable = False  # shared by every call
    return window, (2.0 / float(window.sum()) / channels) ** 2
