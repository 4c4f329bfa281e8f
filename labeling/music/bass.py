"""The bass line's pitch classes: the lowest prominent note of each frame, counted over a clip.

The tonic sits in the bass more than anywhere else (a piece's home chord is the one its bass
returns to), so the bass notes decide between a major key and its relative minor, which share
every pitch. A note's harmonics lie above it, so the lowest strong semitone of a frame is a
fundamental, where a band's chroma would also count the bass's overtones and the chords above
it. The signal is resampled to an eighth of its rate first: a 1024-point frame there resolves
semitones down to 41 Hz at a small cost.
"""

from __future__ import annotations

import numpy as np

DECIMATION = 8
N_FFT = 1024
HOP = 256
LOWEST_MIDI = 28  # E1, 41 Hz: below a bass guitar's lowest string
HIGHEST_MIDI = 60  # C4, 262 Hz: above it a bass line is rarely found
NOTE_SHARE = 0.5  # of the frame's strongest semitone, for the lowest note to count
FLOOR_DB = 30.0  # frames this far below the clip's loudest bass frame hold no bass note
# Share of the power below the decimated rate's Nyquist (about 1.4 kHz) that the bass register
# must hold for the clip to have a bass line: without one, its lowest "notes" are leakage.
MIN_BASS_SHARE = 0.02


def bass_note_histogram(mono: np.ndarray, sr: int, tuning: float) -> np.ndarray:
    """Share of the clip's sounding frames whose lowest prominent note (a semitone at least
    NOTE_SHARE as strong as the frame's strongest, above both neighbours, between LOWEST_MIDI
    and HIGHEST_MIDI) is each pitch class (C first); all zeros when no frame holds a note or the
    bass register holds under MIN_BASS_SHARE of the power (music without a bass line).
    `tuning`: the clip's deviation from A440 in fractions of a semitone."""
    import librosa
    import soxr

    low_sr = sr / DECIMATION
    low = soxr.resample(mono, sr, low_sr)
    power = np.abs(librosa.stft(low, n_fft=N_FFT, hop_length=HOP)) ** 2
    with np.errstate(divide="ignore"):
        midi = 69 + 12 * np.log2(librosa.fft_frequencies(sr=low_sr, n_fft=N_FFT) / 440.0) - tuning
    notes = np.arange(LOWEST_MIDI, HIGHEST_MIDI + 1)
    # Each semitone gathers the bins within half a semitone of it.
    semitones = (np.abs(midi[None, :] - notes[:, None]) <= 0.5).astype(np.float64) @ power
    strongest = semitones.max(axis=0)
    if strongest.max() <= 0 or semitones.sum() < MIN_BASS_SHARE * power.sum():
        return np.zeros(12)
    sounding = strongest > strongest.max() * 10 ** (-FLOOR_DB / 10)
    frames = semitones[:, sounding]
    padded = np.pad(frames, ((1, 1), (0, 0)))
    peaks = (
        (frames >= NOTE_SHARE * frames.max(axis=0)) & (frames >= padded[:-2]) & (frames >= padded[2:]) & (frames > 0)
    )
    lowest = notes[np.argmax(peaks, axis=0)]
    counts = np.bincount(lowest % 12, minlength=12).astype(np.float64)
    return counts / counts.sum()
