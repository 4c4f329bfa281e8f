"""CLAP's audio input: 48 kHz mono from the clip's FLAC, 10 s windows, LAION's padding,
windows pooled by mean then L2; the torch log-mel matches transformers' extractor."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import torch

from labeling.clap.audio import decode_mono_48k, pool_windows, to_float, windows
from labeling.clap.mel import log_mel, mel_filters


def flac(signal: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def test_decode_mixes_to_mono_and_resamples_to_48k():
    t = np.arange(44100 * 2) / 44100
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)
    mono = decode_mono_48k(flac(np.stack([left, right], axis=1), 44100))
    assert mono.dtype == np.float32 and abs(len(mono) - 96000) <= 1
    assert np.max(np.abs(mono)) == pytest.approx(0.3, abs=0.01)  # (0.5 + 0.1) / 2


@pytest.mark.parametrize("seconds,expected", [(3.0, 1), (10.0, 1), (25.0, 3), (30.0, 3), (20.5, 2), (21.5, 3)])
def test_window_count_with_a_short_tail_left_out(seconds, expected):
    assert len(windows(np.zeros(int(seconds * 48000), dtype=np.float32), min_last_window_s=1.0)) == expected


def test_last_window_is_repeated_then_zero_padded_like_laion():
    mono = np.linspace(-0.5, 0.5, 13 * 48000, dtype=np.float32)
    out = windows(mono)
    tail = (np.clip(mono[480000:], -1, 1) * 32767).astype(np.int16)  # 3 s: repeated 3 times, then 1 s of zeros
    assert out.dtype == np.int16 and out.shape == (2, 480000)
    assert np.array_equal(out[1, : 3 * len(tail)], np.tile(tail, 3)) and not out[1, 3 * len(tail) :].any()
    assert np.allclose(to_float(out[:1]), mono[:480000], atol=1 / 32767)


def test_pooling_is_the_normalized_mean_of_each_clips_windows():
    vectors = np.array([[1, 0], [0, 1], [3, 4], [2, 0], [0, 2], [2, 2]], dtype=np.float32)
    pooled = pool_windows(vectors, [2, 1, 3])
    np.testing.assert_allclose(pooled, [[0.70710677, 0.70710677], [0.6, 0.8], [0.70710677, 0.70710677]], rtol=1e-6)


@pytest.mark.parametrize("scale,truncation", [("slaney", "rand_trunc"), ("htk", "fusion")])
def test_log_mel_matches_the_hf_feature_extractor(scale, truncation):
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(0)
    t = np.arange(480000) / 48000
    wave = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    extractor = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation=truncation)
    reference = extractor(wave, sampling_rate=48000, return_tensors="np")["input_features"][0, 0]  # (frames, 64)
    ours = log_mel(torch.from_numpy(wave)[None], torch.from_numpy(mel_filters(scale)))[0].numpy()
    assert ours.shape == reference.shape == (1001, 64)
    np.testing.assert_allclose(ours, reference, atol=2e-3)
