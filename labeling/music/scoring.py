"""Accuracy of measured tempo and key against known facts, with the MIREX metrics.

Tempo (Gouyon et al. 2006, as MIREX reports it): Accuracy1, the estimate within 4% of the
truth; Accuracy2, also within 4% of double, half, triple or a third of it (octave errors
forgiven). A true tempo of 0 marks a piece with no audible pulse: an unknown estimate is
right there (and counted apart). Key (MIREX key detection): weighted score, 1 for the same key, 0.5 a perfect
fifth above or below, 0.3 the relative major or minor, 0.2 the parallel one, 0 otherwise.
An unknown estimate scores 0. Written here (mir_eval computes the key score the same way;
it has no tempo Accuracy1/2).
"""

from __future__ import annotations

from collections.abc import Sequence

from labeling.music.harmony import PITCH_CLASSES

TEMPO_TOLERANCE = 0.04
# A true tempo of 0: the piece has no audible pulse (nothing a listener could tap); there an
# unknown estimate is right and any tempo wrong. Counted in Accuracy1/2 and reported apart.
NO_PULSE = 0.0
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
# Sharps and flats name the same pitch class; truth tables may use either.
ENHARMONIC = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "B#": "C", "E#": "F", "Fb": "E"}


def tempo_accuracy1(estimate: float | None, truth: float) -> bool:
    if truth == NO_PULSE:
        return estimate is None
    return estimate is not None and abs(estimate - truth) <= TEMPO_TOLERANCE * truth


def tempo_accuracy2(estimate: float | None, truth: float) -> bool:
    if truth == NO_PULSE:
        return estimate is None
    return estimate is not None and any(tempo_accuracy1(estimate, truth * f) for f in OCTAVE_FACTORS)


def parse_key(name: str) -> tuple[int, str]:
    """ "A minor" / "a:min" / "Bb major" -> (pitch class, mode); ValueError for anything else."""
    tonic, _, mode = name.strip().replace(":", " ").partition(" ")
    tonic = tonic[:1].upper() + tonic[1:]
    mode = {"maj": "major", "min": "minor"}.get(mode.strip().lower(), mode.strip().lower())
    tonic = ENHARMONIC.get(tonic, tonic)
    if tonic not in PITCH_CLASSES or mode not in ("major", "minor"):
        raise ValueError(f"not a key: {name!r} (expected e.g. 'A minor' or 'Eb major')")
    return PITCH_CLASSES.index(tonic), mode


def key_score(estimate: str | None, truth: str) -> float:
    """The MIREX weighted score of one estimated key against the true one."""
    if estimate is None:
        return 0.0
    (est, est_mode), (ref, ref_mode) = parse_key(estimate), parse_key(truth)
    interval = (est - ref) % 12
    if est_mode == ref_mode:
        return 1.0 if interval == 0 else 0.5 if interval in (5, 7) else 0.0
    if interval == 0:
        return 0.2
    relative = 9 if ref_mode == "major" else 3  # major -> its relative minor a sixth up; minor -> a third up
    return 0.3 if interval == relative else 0.0


def accuracy_report(pairs: Sequence[tuple[float | None, str | None, float | None, str | None]]) -> dict:
    """(estimated bpm, estimated key, true bpm, true key) per clip -> the mean scores and counts.
    A clip without a true value does not count for that measure."""
    tempos = [(est, ref) for est, _, ref, _ in pairs if ref is not None]
    keys = [(est, ref) for _, est, _, ref in pairs if ref is not None]
    report: dict = {"clips": len(pairs), "tempo_clips": len(tempos), "key_clips": len(keys)}
    if tempos:
        report["tempo_accuracy1"] = round(sum(tempo_accuracy1(e, r) for e, r in tempos) / len(tempos), 4)
        report["tempo_accuracy2"] = round(sum(tempo_accuracy2(e, r) for e, r in tempos) / len(tempos), 4)
        report["tempo_unknown"] = sum(e is None for e, _ in tempos)
        no_pulse = [e for e, r in tempos if r == NO_PULSE]
        report["tempo_no_pulse"] = len(no_pulse)  # of tempo_clips
        report["tempo_no_pulse_unknown"] = sum(e is None for e in no_pulse)  # right: no tempo stated
    if keys:
        scores = [key_score(e, r) for e, r in keys]
        report["key_weighted_score"] = round(sum(scores) / len(scores), 4)
        report["key_exact"] = round(sum(s == 1.0 for s in scores) / len(scores), 4)
        report["key_unknown"] = sum(e is None for e, _ in keys)
    return report
