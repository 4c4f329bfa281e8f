"""Key and chords from chroma: key profiles and triad templates, in NumPy.

A key is the rotation of a major or minor profile that correlates best with the clip's mean
chroma (the Krumhansl-Schmuckler method, with Albrecht and Shanahan's corpus-trained profiles:
on the demo corpus they scored 0.88 against Krumhansl-Kessler's 0.73 and Temperley's 0.74). Chords
are major and minor triads matched to beat-synchronous chroma. Pitch classes are named as
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


def estimate_key(chroma_mean: np.ndarray) -> tuple[str, str, float]:
    """(tonic, mode, correlation) of the best-fitting key profile for a mean chroma vector."""
    templates, names = _key_templates()
    scores = _correlations(chroma_mean, templates)
    best = int(np.argmax(scores))
    return names[best][0], names[best][1], float(scores[best])


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
