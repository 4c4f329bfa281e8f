"""The bass line's pitch classes: the lowest prominent note of each frame, under louder chords."""

import numpy as np
from music_signals import SR

from labeling.music.bass import bass_note_histogram
from labeling.music.harmony import PITCH_CLASSES


def _tone(midi: int, seconds: float, gain: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    return gain * sum(np.sin(2 * np.pi * hz * k * t) / k for k in (1, 2, 3, 4))  # harmonics above the note


def test_the_lowest_note_is_counted_not_its_harmonics_nor_the_chord_above():
    """A2 for 3 s, then F2 for 1 s, each with its overtones, under a louder C major triad (E4 G4 C5)."""
    triad = sum(_tone(m, 4.0, 0.5) for m in (64, 67, 72))
    bass = np.concatenate([_tone(45, 3.0, 0.3), _tone(41, 1.0, 0.3)])
    shares = bass_note_histogram((triad + bass).astype(np.float32), SR, 0.0)
    assert abs(shares.sum() - 1) < 1e-9
    assert {PITCH_CLASSES[i] for i in np.flatnonzero(shares > 0.05)} == {"A", "F"}, shares
    assert abs(shares[PITCH_CLASSES.index("A")] - 0.75) < 0.1, shares


def test_silence_has_no_bass_notes():
    assert not bass_note_histogram(np.zeros(SR * 4, dtype=np.float32), SR, 0.0).any()


def test_music_without_a_bass_line_has_no_bass_notes():
    """A triad at C5 alone: the bass register holds only the spectrum's leakage, no notes."""
    triad = sum(_tone(m, 4.0, 0.5) for m in (72, 76, 79))
    assert not bass_note_histogram(triad.astype(np.float32), SR, 0.0).any()
