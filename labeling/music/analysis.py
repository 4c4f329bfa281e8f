"""Tempo, beats, key and chords of one clip, measured from its audio with librosa.

Tempo: librosa's onset strength, tempo estimate and dynamic-programming beat tracker; its
confidence is the onset envelope's normalized autocorrelation at the beat period (1: every
beat repeats exactly, 0: no periodicity). Key: the clip's mean chroma against key profiles
(labeling.music.harmony); its confidence is that correlation. Chords: beat-synchronous chroma
against triads. Silence, noise, arrhythmic sound and clips too short for the method get
unknown facts with confidence 0 rather than a made-up number. Deterministic: no randomness.
"""

from __future__ import annotations

import numpy as np

from curation.core.extras import needs_extra
from labeling.music.config import AnalysisSettings
from labeling.music.facts import MusicFacts
from labeling.music.harmony import estimate_chords, estimate_key, progression

HOP = 512
N_FFT = 2048
# Chroma needs finer frequency resolution than onsets and far fewer frames: on the demo
# corpus a 4096-point frame at hop 2048 found keys better than the onsets' 2048 at 512.
SMOOTHING = 43  # onset frames in about a second at 22.05 kHz
CHROMA_HOP = 2048
CHROMA_N_FFT = 4096


def analyze(mono: np.ndarray, settings: AnalysisSettings) -> MusicFacts:
    """The facts of a mono float signal at settings.sample_rate."""
    with needs_extra("analysis", "measuring tempo and key (soundry analyze)", "librosa"):
        import librosa

    mono = np.asarray(mono, dtype=np.float32)
    if len(mono) < settings.min_duration_s * settings.sample_rate or not np.isfinite(mono).all():
        return MusicFacts()
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if rms <= 0 or 20 * np.log10(rms) < settings.silence_dbfs:
        return MusicFacts()
    sr = settings.sample_rate
    power = np.abs(librosa.stft(mono, n_fft=N_FFT, hop_length=HOP)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sr)
    envelope = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=HOP)
    bpm, confidence, beats = _tempo(librosa, envelope, sr, settings)
    chroma = librosa.feature.chroma_stft(y=mono, sr=sr, n_fft=CHROMA_N_FFT, hop_length=CHROMA_HOP)
    tonic, mode, tonality = estimate_key(chroma.mean(axis=1))
    if tonality < settings.min_tonality:
        return MusicFacts(bpm, confidence, len(beats))
    chords: list[str] = []
    if settings.chords and len(beats) >= settings.min_chord_beats:
        beat_frames = np.minimum(beats * HOP // CHROMA_HOP, chroma.shape[1] - 1)
        beat_chroma = librosa.util.sync(chroma, beat_frames, aggregate=np.median)[:, 1:]  # from the first beat on
        chords = estimate_chords(beat_chroma, settings.min_chord_beats)
    return MusicFacts(
        bpm,
        confidence,
        len(beats),
        tonic,
        mode,
        round(tonality, 4),
        chords,
        progression(chords, tonic, settings.progression_length),
    )


def _tempo(
    librosa, envelope: np.ndarray, sr: int, settings: AnalysisSettings
) -> tuple[float | None, float, np.ndarray]:
    """(bpm, confidence, beat frames); (None, 0, []) when the onsets show no steady beat."""
    # A smooth swell or decay (a sweep, a fade) correlates with itself at every short lag; only
    # what stands out of its local mean (about a second) can repeat at a beat period.
    centered = envelope - np.convolve(envelope, np.ones(SMOOTHING) / SMOOTHING, mode="same")
    if not np.any(centered):
        return None, 0.0, np.zeros(0, dtype=int)
    bpm = float(librosa.feature.tempo(onset_envelope=envelope, sr=sr, hop_length=HOP)[0])
    autocorrelation = librosa.autocorrelate(centered)
    period = 60.0 * sr / HOP / bpm  # frames per beat
    near = autocorrelation[max(1, int(np.floor(period)) - 1) : int(np.ceil(period)) + 2]
    periodicity = float(np.clip(near.max() / autocorrelation[0], 0, 1)) if len(near) else 0.0
    if periodicity < settings.min_periodicity:
        return None, 0.0, np.zeros(0, dtype=int)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=HOP, bpm=bpm)
    return round(bpm, 2), round(periodicity, 4), beats
