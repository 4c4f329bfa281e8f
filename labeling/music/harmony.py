"""Key and chords from chroma: the diatonic collection, the bass, key profiles and triad templates, in NumPy.

A key is found in two steps. First its diatonic collection (the seven pitch classes of a major
scale and of its relative minor): the rotation of the major scale that correlates best with the
mean chroma of the register where fundamentals lie (below about 800 Hz; higher, the partials
of bright sounds add a fifth above every note, which pulls a profile towards the dominant's
key). Then the tonic: of the collection's major tonic and its relative minor's, the one the bass
holds more (labeling.music.bass); a tie goes to the Krumhansl-Schmuckler reading of the mean
chroma (Albrecht and Shanahan's corpus-trained profiles) between those two keys. A profile
alone reads a natural-minor piece as its relative major whenever their shared chords sound
alike; the bass tells them apart. The key's confidence is its profile correlation. Chords are
major and minor triads matched to beat-synchronous chroma. Pitch classes are named as
curation.demo.synth names them (C, C#, D, Eb, E, F, F#, G, Ab, A, Bb, B).
"""

from __future__ import annotations

import numpy as np

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")
# Albrecht & Shanahan (2013), pitch-class distributions of a corpus of major and minor
# pieces, with C as the tonic.
PROFILES = {
    "major": np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
    "minor": np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
}
# The major scale's pitch classes from its tonic; rotated, the twelve diatonic collections.
MAJOR_SCALE = np.isin(np.arange(12), (0, 2, 4, 5, 7, 9, 11)).astype(np.float64)
RELATIVE_MINOR = 9  # semitones from a collection's major tonic up to its minor one
PEAK_SHARE = 0.25  # of the strongest pitch class, for a peak to count (pitch_evidence)
TRIADS = {"maj": (0, 4, 7), "min": (0, 3, 7)}
# Roman numerals of the twelve semitones above a tonic; a minor chord's numeral is lower case.
NUMERALS = ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII")


def _correlations(vector: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Pearson correlation of one 12-vector with each row of `templates`."""
    v = vector - vector.mean()
    t = templates - templates.mean(axis=1, keepdims=True)
    denominator = np.linalg.norm(t, axis=1) * np.linalg.norm(v)
    if denominator.min() <= 0:
        return np.zeros(len(templates))
    return t @ v / denominator


def _key_templates() -> tuple[np.ndarray, list[tuple[str, str]]]:
    names = [(PITCH_CLASSES[tonic], mode) for mode in MODES for tonic in range(12)]
    return np.stack([np.roll(PROFILES[mode], tonic) for mode in MODES for tonic in range(12)]), names


def tonality(chroma_mean: np.ndarray) -> float:
    """How tonal a mean chroma vector is: its best correlation with any of the 24 key profiles."""
    return float(_correlations(chroma_mean, _key_templates()[0]).max())


def estimate_key(
    chroma_mean: np.ndarray, fundamentals_mean: np.ndarray, bass_notes: np.ndarray
) -> tuple[str, str, float]:
    """(tonic, mode, confidence) from the mean chroma, the mean chroma of the fundamentals'
    register (diatonic collection) and the bass notes' pitch-class shares (tonic); the confidence
    is the key's profile correlation with the mean chroma, at least 0."""
    collections = np.stack([np.roll(MAJOR_SCALE, tonic) for tonic in range(12)])
    major = int(np.argmax(_correlations(fundamentals_mean, collections)))
    minor = (major + RELATIVE_MINOR) % 12
    templates, names = _key_templates()
    candidates = [major, 12 + minor]  # rows of the templates: majors first, then minors
    scores = _correlations(chroma_mean, templates[candidates])
    if bass_notes[major] != bass_notes[minor]:
        chosen = 0 if bass_notes[major] > bass_notes[minor] else 1
    else:
        chosen = int(np.argmax(scores))
    tonic, mode = names[candidates[chosen]]
    return tonic, mode, max(0.0, float(scores[chosen]))


def pitch_evidence(chroma_mean: np.ndarray) -> tuple[int, float]:
    """What a mean chroma vector shows of pitch: (the pitch classes that are peaks, each above
    both its semitone neighbours and at least a quarter as strong as the strongest, over the
    quietest class; the share of the chroma above that floor). A triad shows three peaks; a
    click or a drone one (a short blip smears into its neighbours, it does not add peaks); noise
    and drums spread evenly (a share near 0)."""
    above = chroma_mean - chroma_mean.min()
    total = chroma_mean.sum()
    if total <= 0 or above.max() <= 0:
        return 0, 0.0
    peaks = (above > np.roll(above, 1)) & (above > np.roll(above, -1)) & (above >= PEAK_SHARE * above.max())
    return int(peaks.sum()), float(above.sum() / total)


def _chord_templates() -> tuple[np.ndarray, list[str]]:
    rows, names = [], []
    for quality, intervals in TRIADS.items():
        for root in range(12):
            row = np.zeros(12)
            row[[(root + i) % 12 for i in intervals]] = 1.0
            rows.append(row)
            names.append(f"{PITCH_CLASSES[root]}:{quality}")
    return np.stack(rows), names


def estimate_chords(beat_chroma: np.ndarray, min_beats: int) -> list[str]:
    """Chord changes from chroma per beat (12, beats): a triad per beat; a chord held for fewer
    than `min_beats` beats is taken for a passing sound and dropped; repeats merged."""
    templates, names = _chord_templates()
    labels = [
        names[int(np.argmax(_correlations(vector, templates)))] if vector.max() > 0 else None
        for vector in beat_chroma.T
    ]
    runs: list[tuple[str | None, int]] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1] + 1)
        else:
            runs.append((label, 1))
    held = [label for label, length in runs if label is not None and length >= min_beats]
    return [label for i, label in enumerate(held) if i == 0 or label != held[i - 1]]


def roman_numeral(chord: str, tonic: str) -> str:
    """ "F:maj" in A minor -> "VI"; a minor triad's numeral is lower case."""
    root, quality = chord.split(":")
    numeral = NUMERALS[(PITCH_CLASSES.index(root) - PITCH_CLASSES.index(tonic)) % 12]
    return numeral.lower() if quality == "min" else numeral


def progression(chords: list[str], tonic: str, length: int) -> str | None:
    """The first `length` chord changes as Roman numerals joined by "-", e.g. "I-V-vi-IV"."""
    if not chords:
        return None
    return "-".join(roman_numeral(chord, tonic) for chord in chords[:length])
