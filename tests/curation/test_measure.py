"""Quality measures on synthetic clips, with pyloudnorm as the loudness reference."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import soxr

from curation.measure import (
    BANDWIDTH_FFT,
    BANDWIDTH_MAX_FRAMES,
    FLOOR_DB,
    QualityMeasures,
    _hann,
    abs_max_bits,
    measure,
    windowed_mix,
)


def _noise(seconds: float, rate: int, channels: int = 1, level: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((round(seconds * rate), channels)) * level).astype(np.float32)


def _sine(seconds: float, rate: int, freq: float = 997.0, amplitude: float = 1.0, channels=1):
    t = np.arange(round(seconds * rate)) / rate
    tone = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.ascontiguousarray(np.repeat(tone[:, None], channels, axis=1))


def _music(seconds: float, rate: int, channels: int = 1, seed: int = 0):
    """Harmonic notes with decaying envelopes, a bass line, noise hits and a quiet passage,
    so that both loudness gates have something to do."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    harmonics = np.arange(1, 6)
    out = np.zeros((n, channels))
    for ch in range(channels):
        for start in range(0, n, rate // 4):
            note = t[: min(rate // 2, n - start)]
            f0 = rng.choice([110.0, 220.0, 330.0, 440.0])
            partials = np.sin(2 * np.pi * f0 * note[:, None] * harmonics) @ (0.3 / harmonics)
            out[start : start + note.size, ch] += np.exp(-6.0 * note) * partials
        out[:, ch] += 0.2 * np.sin(2 * np.pi * 55.0 * t)
        hits = rng.random(n) < 4.0 / rate
        out[:, ch] += scipy.signal.oaconvolve(hits, rng.standard_normal(rate // 50) * 0.3, "same")
    out[n // 2 : n // 2 + n // 5] *= 0.01  # 40 dB down: below the relative gate
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


def _reference_lufs(x: np.ndarray, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64)))


def test_full_scale_sine_levels():
    m = measure(_sine(2.0, 44100), 44100)
    assert m.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert m.rms_dbfs == pytest.approx(-3.01, abs=0.01)
    assert m.finite and m.clipping_ratio > 0.0  # the crest touches the clip level


def test_minus_20_dbfs_sine_levels():
    m = measure(_sine(2.0, 44100, amplitude=0.1), 44100)
    assert m.peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert m.rms_dbfs == pytest.approx(-23.01, abs=0.01)
    assert m.clipping_ratio == 0.0
    assert m.silence_ratio == 0.0


def test_known_loudness_of_997_hz_sine():
    # BS.1770: a 0 dBFS 1 kHz sine in one channel reads -3.01 LKFS, so -20 dBFS reads ~-23.0.
    x = _sine(5.0, 48000, amplitude=0.1)
    lufs = measure(x, 48000).lufs
    assert lufs == pytest.approx(-23.0, abs=0.1)
    assert lufs == pytest.approx(_reference_lufs(x, 48000), abs=0.05)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("kind", ["noise", "sine", "music", "quiet_noise"])
def test_lufs_matches_pyloudnorm(kind: str, channels: int, rate: int):
    signals = {
        "noise": lambda: _noise(3.0, rate, channels),
        "sine": lambda: _sine(2.3, rate, freq=3000.0, amplitude=0.5, channels=channels),
        "music": lambda: _music(4.0, rate, channels),
        "quiet_noise": lambda: _noise(1.3, rate, channels, level=3e-4),  # near the -70 gate
    }
    x = signals[kind]()
    assert measure(x, rate).lufs == pytest.approx(_reference_lufs(x, rate), abs=0.05)


@pytest.mark.parametrize("seconds", [0.55, 1.23, 2.987])
def test_lufs_counts_only_complete_blocks(seconds: float):
    # pyloudnorm also counts a trailing partial block; BS.1770 does not, so compare on the
    # whole 100 ms hops, and check that a steady tone reads the same at any length.
    x = _music(seconds, 44100, channels=2)
    whole_hops = x[: x.shape[0] // 4410 * 4410]
    assert measure(x, 44100).lufs == pytest.approx(_reference_lufs(whole_hops, 44100), abs=1e-6)
    tone = _sine(seconds, 44100, amplitude=0.1)
    assert measure(tone, 44100).lufs == pytest.approx(measure(tone[:22050], 44100).lufs, abs=1e-3)


@pytest.mark.parametrize("seconds", [0.4, 0.5, 1.3, 2.0, 6.1])
def test_mono_loudness_equals_stereo_with_silent_right(seconds: float):
    # Mono packs its two halves into one filter pass; a stereo clip with a silent right
    # channel goes straight through, so the two must agree to rounding.
    rate = 44100
    x = _music(seconds, rate)
    x[: x.shape[0] // 3] += 0.3  # a DC step keeps the high-pass busy across the halves
    stereo = np.ascontiguousarray(np.concatenate([x, np.zeros_like(x)], axis=1))
    assert measure(x, rate).lufs == pytest.approx(measure(stereo, rate).lufs, abs=1e-6)
    assert measure(x, rate).lufs == pytest.approx(_reference_lufs(x, rate), abs=0.05)


@pytest.mark.parametrize("channels", [1, 2])
def test_digital_silence(channels: int):
    m = measure(np.zeros((44100, channels), np.float32), 44100)
    assert (m.peak_dbfs, m.rms_dbfs, m.lufs) == (FLOOR_DB, FLOOR_DB, FLOOR_DB)
    assert m.silence_ratio == 1.0
    assert m.bandwidth_hz == 0.0
    assert m.clipping_ratio == 0.0
    assert m.finite


def test_half_silent_clip():
    x = _noise(2.0, 44100)
    x[: x.shape[0] // 2] = 0.0
    assert measure(x, 44100).silence_ratio == pytest.approx(0.5, abs=0.03)


def test_partial_last_frame_counts():
    x = _noise(1.025, 44100)  # 20 whole 50 ms frames and a half frame
    x[20 * 2205 :] = 0.0
    assert measure(x, 44100).silence_ratio == pytest.approx(1 / 21)


@pytest.mark.parametrize("channels", [1, 2])
def test_clipped_sine(channels: int):
    x = np.clip(_sine(1.0, 44100, amplitude=3.0, channels=channels), -1.0, 1.0)
    m = measure(x, 44100)
    # |3 sin| >= 0.999 on all but 2/pi * asin(0.333) of the cycle
    assert m.clipping_ratio == pytest.approx(1 - 2 / math.pi * math.asin(0.999 / 3), abs=0.01)
    assert m.clipping_ratio > 0.1
    clean = _sine(1.0, 44100, amplitude=0.9, channels=channels)
    assert measure(clean, 44100).clipping_ratio == 0.0


def test_bandwidth_of_white_noise():
    assert measure(_noise(2.0, 44100), 44100).bandwidth_hz > 20000


def test_bandwidth_of_upsampled_noise():
    x = soxr.resample(_noise(3.0, 16000)[:, 0], 16000, 44100).astype(np.float32)
    assert 7000 < measure(x[:, None], 44100).bandwidth_hz < 8500


def test_bandwidth_of_low_passed_noise():
    # A codec-like brick wall: elliptic, 100 dB down just past 4 kHz.
    sos = scipy.signal.ellip(10, 0.1, 100, 4000, fs=44100, output="sos")
    x = scipy.signal.sosfilt(sos, _noise(3.0, 44100, channels=2), axis=0).astype(np.float32)
    assert 3500 < measure(np.ascontiguousarray(x), 44100).bandwidth_hz < 5500


def test_bandwidth_of_long_clip_is_bounded_and_deterministic():
    x = _noise(60.0, 8000, channels=2)
    assert measure(x, 8000).bandwidth_hz == measure(x.copy(), 8000).bandwidth_hz > 3800


def test_mono_as_stereo():
    mono = _music(1.0, 44100)
    same = np.ascontiguousarray(np.repeat(mono, 2, axis=1))
    assert measure(same, 44100).mono_as_stereo
    nearly = same.copy()
    nearly[:, 1] += 1e-6  # well under 1e-4 of the peak, e.g. dither or codec rounding
    assert measure(nearly, 44100).mono_as_stereo
    assert not measure(_noise(1.0, 44100, channels=2), 44100).mono_as_stereo
    assert not measure(mono, 44100).mono_as_stereo


@pytest.mark.parametrize("where", [0, 4095, 4096, 44099])
def test_one_differing_sample_makes_stereo_wherever_it_is(where: int):
    # The channels are compared at the start first: a difference past that start still counts.
    same = np.ascontiguousarray(np.repeat(_music(1.0, 44100), 2, axis=1))
    same[where, 1] += 0.01
    assert not measure(same, 44100).mono_as_stereo


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("channels", [1, 2])
def test_non_finite_samples(bad: float, channels: int):
    x = _noise(1.0, 44100, channels)
    x[1234, channels - 1] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = measure(x, 44100)
    assert not m.finite
    assert (m.peak_dbfs, m.rms_dbfs, m.lufs) == (FLOOR_DB, FLOOR_DB, FLOOR_DB)
    assert (m.clipping_ratio, m.silence_ratio, m.bandwidth_hz, m.mono_as_stereo) == (
        0.0,
        0.0,
        0.0,
        False,
    )


def test_very_short_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = measure(_noise(0.1, 44100, channels=2), 44100)
    assert m.lufs == FLOOR_DB  # shorter than one 400 ms block
    assert m.peak_dbfs > -20.0 and m.rms_dbfs == pytest.approx(-20.0, abs=0.5)
    assert m.silence_ratio == 0.0
    assert m.bandwidth_hz > 20000


@pytest.mark.parametrize("rate", [8000, 192000])
@pytest.mark.parametrize("channels", [1, 2])
def test_extreme_sample_rates(rate: int, channels: int):
    x = _noise(1.5, rate, channels)
    m = measure(x, rate)
    assert m.lufs == pytest.approx(_reference_lufs(x, rate), abs=0.05)
    assert m.bandwidth_hz > 0.9 * rate / 2
    assert m.rms_dbfs == pytest.approx(-20.0, abs=0.2)


def test_to_row_has_plain_python_values():
    row = measure(_noise(1.0, 44100, channels=2), 44100).to_row()
    names = [f for f in QualityMeasures.__dataclass_fields__ if f != "finite"]
    assert list(row) == names
    assert all(type(v) in (float, bool) for v in row.values())


@pytest.mark.parametrize("shape", [(0, 1), (100, 3), (100,)])
def test_rejects_malformed_pcm(shape: tuple[int, ...]):
    with pytest.raises(ValueError):
        measure(np.zeros(shape, np.float32), 44100)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seconds", [0.05, 1.3, 30.0])
def test_bandwidth_frames_are_numpys_bit_for_bit(channels: int, seconds: float):
    # The compiled gather must round every sum and product as the numpy code it replaced did,
    # or a bandwidth bin at its threshold could move.
    x = _noise(seconds, 44100, channels=channels)
    length = min(BANDWIDTH_FFT, len(x))
    count = min(BANDWIDTH_MAX_FRAMES, len(x) // length)
    starts = np.linspace(0, len(x) - length, count).astype(np.intp)
    window, _ = _hann(length, channels)
    frames = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)[starts]
    expected = (frames[:, 0] + frames[:, 1] if channels == 2 else frames[:, 0]) * window
    got = np.empty((count, length), np.float32)
    windowed_mix(x, starts, window, got)
    assert got.dtype == expected.dtype == np.float32
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))


def _negative_nan() -> np.float32:
    return np.array([0xFFC00001], np.uint32).view(np.float32)[0]


@pytest.mark.parametrize(
    "special",
    [None, -0.0, 1e-45, -1e-45, np.finfo(np.float32).max, -np.finfo(np.float32).max, np.inf, -np.inf, np.nan, "-nan"],
)
@pytest.mark.parametrize("peak_sign", [1.0, -1.0])
def test_the_peak_is_numpys_maximum_of_magnitudes_bit_for_bit(special, peak_sign: float):
    # The peak is read from the samples' bit patterns; it must be numpy's max(x.max(), -x.min())
    # exactly (a peak at CLIP_LEVEL decides a rejection), NaN and infinity included.
    x = _noise(1.3, 44100, channels=2, seed=7)
    x[12345, 1] = peak_sign * 0.75  # the largest magnitude, of either sign
    if special is not None:
        x[999, 0] = _negative_nan() if special == "-nan" else special
    expected = np.float32(max(x.max(), -x.min()))
    got = np.uint32(abs_max_bits(x.reshape(-1).view(np.uint32))).view(np.float32)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got.view(np.uint32) == expected.view(np.uint32)
    zeros = np.array([[0.0, -0.0], [-0.0, 0.0]], np.float32)
    assert np.uint32(abs_max_bits(zeros.reshape(-1).view(np.uint32))).view(np.float32) == 0.0
