"""Tempo and meter from an onset envelope: periodicity, pulse-train salience and beat accents.

Tempo: librosa's tempogram estimate (log-normal prior around 120 BPM), then a check of the
triple relations it cannot see: a pulse train at 3/2 or 2/3 of that tempo whose pulses the
onsets support better (mean autocorrelation at 1..4 periods, under the same prior) wins. A
tempo at 2/3 of the truth puts every other pulse between beats; a tempo at 3/2, every other
pulse between eighths: both lose half their support. Octave choices (double, half) stay the
prior's. Meter: the beats' loudness, grouped in bars of 3 and of 4: the grouping whose one
position stands out (the downbeat accent) by at least `min_accent_db` over the others' mean,
and twice as much as the other grouping's, gives "3/4" or "4/4" (a duple 2/4 reads as 4/4);
otherwise it is not stated.
"""

from __future__ import annotations

import numpy as np

HOP = 512
SMOOTHING = 43  # onset frames in about a second at 22.05 kHz
PRIOR_CENTER_BPM = 120.0  # librosa's default prior: log-normal, one octave wide
TRIPLE_RATIOS = (1.0, 1.5, 2.0 / 3.0)
PULSES = 4  # periods a pulse train is scored over
METERS = (3, 4)
MIN_BARS = 4


def _prior(bpm: float) -> float:
    return float(np.exp(-0.5 * np.log2(bpm / PRIOR_CENTER_BPM) ** 2))


def _support(autocorrelation: np.ndarray, period: float, pulses: int = 1) -> float:
    """Mean normalized autocorrelation at 1..pulses periods (frames), each the best within a frame."""
    values = []
    for k in range(1, pulses + 1):
        lag = k * period
        if lag + 2 >= len(autocorrelation) / 2:  # beyond, the unbiased autocorrelation rests on too few frames
            break
        window = autocorrelation[max(1, int(np.floor(lag)) - 1) : int(np.ceil(lag)) + 2]
        values.append(window.max() if len(window) else 0.0)
    return float(np.clip(np.mean(values) / autocorrelation[0], 0, 1)) if values else 0.0


def _refined_period(autocorrelation: np.ndarray, period: float) -> float:
    """The beat period to a fraction of a frame: the autocorrelation peak near 1, 2, then 4
    periods, each interpolated (a parabola through the peak and its neighbours) and divided by
    its multiple. The tempogram's whole-frame lags are 2.5% apart at 120 BPM; over a clip that
    puts beats off the onsets."""
    for multiple in (1, 2, 4):
        lag = multiple * period
        low = max(1, int(round(lag)) - 1)
        window = autocorrelation[low : int(round(lag)) + 2]
        if len(window) < 3 or int(round(lag)) + 2 >= len(autocorrelation):
            break
        peak = low + int(np.argmax(window))
        if not 0 < peak < len(autocorrelation) - 1:
            break
        before, at, after = autocorrelation[peak - 1 : peak + 2]
        curvature = before - 2 * at + after
        offset = 0.5 * (before - after) / curvature if curvature < 0 else 0.0
        period = (peak + float(np.clip(offset, -0.5, 0.5))) / multiple
    return period


def estimate_tempo(envelope: np.ndarray, sr: int, min_periodicity: float) -> tuple[float | None, float]:
    """(bpm, confidence); (None, 0) when the onsets show no steady beat."""
    import librosa

    # A smooth swell or decay (a sweep, a fade) correlates with itself at every short lag; only
    # what stands out of its local mean (about a second) can repeat at a beat period.
    centered = envelope - np.convolve(envelope, np.ones(SMOOTHING) / SMOOTHING, mode="same")
    if not np.any(centered):
        return None, 0.0
    frames_per_minute = 60.0 * sr / HOP
    estimate = float(librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP)[0])
    # Unbiased: a lag overlaps the clip less the longer it is; a steady beat scores alike at 1 and 4 periods.
    autocorrelation = librosa.autocorrelate(centered) * len(centered) / np.arange(len(centered), 0, -1)
    bpm = max(
        (estimate * r for r in TRIPLE_RATIOS),
        key=lambda b: _support(autocorrelation, frames_per_minute / b, PULSES) * _prior(b),
    )
    period = _refined_period(autocorrelation, frames_per_minute / bpm)
    bpm = frames_per_minute / period
    # Over several periods: a beat whose pulses differ (kick, then snare) repeats more exactly at two or four.
    periodicity = _support(autocorrelation, period, PULSES)
    if periodicity < min_periodicity:
        return None, 0.0
    return round(bpm, 2), round(periodicity, 4)


def estimate_tempo_in_bands(
    envelopes: np.ndarray, sr: int, min_periodicity: float
) -> tuple[float | None, float, int | None]:
    """(bpm, confidence, index of the envelope it came from) from onset envelopes, the whole
    spectrum's first and then each register's; (None, 0, None) when none shows a steady beat.
    The whole spectrum's tempo stands when it shows a beat (its octave is the one drums and
    melody agree on; a bass line alone often pulses at half the beat); otherwise the register
    whose beat is clearest (highest periodicity) gives it. Legato music without drums keeps its
    pulse in one register (a plucked bass under bowed strings): the whole spectrum's onsets
    blur it, its own band's show it."""
    bpm, confidence = estimate_tempo(envelopes[0], sr, min_periodicity)
    if bpm is not None:
        return bpm, confidence, 0
    best: tuple[float | None, float, int | None] = (None, 0.0, None)
    for index in range(1, len(envelopes)):
        bpm, confidence = estimate_tempo(envelopes[index], sr, min_periodicity)
        if bpm is not None and confidence > best[1]:
            best = (bpm, confidence, index)
    return best


def estimate_meter(loudness_db: np.ndarray, beats: np.ndarray, min_accent_db: float) -> str | None:
    """ "3/4" or "4/4" from the loudness accents on the beats; None when no grouping stands out."""
    if len(beats) < MIN_BARS * max(METERS):
        return None
    # The loudest frame within a frame of each beat: the tracker places beats to a frame, and a
    # frame's window weighs a hit by where it falls.
    accents = np.array([loudness_db[max(0, b - 1) : b + 2].max() for b in beats], dtype=np.float64)
    contrast = {}
    for meter in METERS:
        by_position = accents[: len(accents) // meter * meter].reshape(-1, meter).mean(axis=0)
        best = int(np.argmax(by_position))
        contrast[meter] = by_position[best] - np.delete(by_position, best).mean()
    meter = max(contrast, key=contrast.get)
    other = min(contrast.values())
    if contrast[meter] < min_accent_db or contrast[meter] < 2 * max(other, 0.0):
        return None
    return f"{meter}/4"
