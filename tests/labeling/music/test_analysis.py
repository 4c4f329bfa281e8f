"""Tempo, key and chords measured from signals whose facts are known, and the unknown cases."""

import numpy as np
import pytest
from music_signals import SR, chord_progression, click_track, drum_loop, irregular_hits

from curation.demo import synth
from labeling.music.analysis import analyze
from labeling.music.config import AnalysisSettings
from labeling.music.scoring import tempo_accuracy1

SETTINGS = AnalysisSettings(sample_rate=SR)


@pytest.mark.parametrize("bpm", [90.0, 128.0])
def test_click_track_tempo_and_beats(bpm):
    facts = analyze(click_track(bpm, 8.0), SETTINGS)
    assert tempo_accuracy1(facts.bpm, bpm), facts
    assert facts.bpm_confidence > 0.8
    assert abs(facts.beat_count - 8.0 * bpm / 60) <= 2


@pytest.mark.parametrize(
    ("tonic", "mode", "chords", "numerals"),
    [
        ("C", "major", ["C:maj", "G:maj", "A:min", "F:maj"], "I-V-vi-IV"),
        ("A", "minor", ["A:min", "D:min", "E:maj", "A:min"], "i-iv-V-i"),
    ],
)
def test_progression_key_and_chords(tonic, mode, chords, numerals):
    facts = analyze(chord_progression(tonic, chords, 120.0, 12.0), SETTINGS)
    assert (facts.key, facts.mode) == (tonic, mode), facts
    assert facts.key_confidence >= SETTINGS.min_tonality
    assert tempo_accuracy1(facts.bpm, 120.0), facts
    assert facts.chords[:4] == chords, facts
    assert facts.progression == numerals


def test_deterministic():
    signal = chord_progression("A", ["A:min", "F:maj"], 100.0, 8.0)
    assert analyze(signal, SETTINGS) == analyze(signal.copy(), SETTINGS)


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(np.zeros(SR * 6, dtype=np.float32), id="silence"),
        pytest.param(np.random.default_rng(1).standard_normal(SR * 6).astype(np.float32) * 0.2, id="noise"),
        pytest.param(click_track(120.0, 2.0), id="too-short"),
        pytest.param(irregular_hits(8.0, seed=2), id="arrhythmic"),
        pytest.param(np.full(SR * 6, np.nan, dtype=np.float32), id="not-finite"),
    ],
)
def test_unknown_with_zero_confidence(signal):
    facts = analyze(signal, SETTINGS)
    assert facts.bpm is None and facts.bpm_confidence == 0 and facts.beat_count == 0 and facts.meter is None
    assert facts.key_name is None and facts.key_confidence == 0 and facts.chords == []


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(click_track(120.0, 8.0), id="click-track"),
        pytest.param(drum_loop(110.0, 8.0), id="drums-only"),
    ],
)
def test_a_beat_without_pitches_has_a_tempo_and_no_key(signal):
    """A click or a drum kit correlates with some key profile by chance; it has no key."""
    facts = analyze(signal, SETTINGS)
    assert facts.bpm is not None and facts.bpm_confidence > 0.5, facts
    assert facts.key_name is None and facts.key_confidence == 0 and facts.chords == [] and facts.progression is None


@pytest.mark.parametrize("beats_per_bar", [3, 4])
def test_meter_from_accented_downbeats(beats_per_bar):
    facts = analyze(click_track(120.0, 16.0, beats_per_bar=beats_per_bar), SETTINGS)
    assert facts.meter == f"{beats_per_bar}/4", facts


def test_no_meter_without_accents():
    """Every beat alike: the tempo is clear, the grouping into bars is not."""
    facts = analyze(click_track(120.0, 16.0, beats_per_bar=1), SETTINGS)
    assert facts.bpm is not None and facts.meter is None, facts


def test_a_kick_and_snare_beat_is_not_read_at_two_thirds_of_its_tempo():
    """The demo's techno (kick on every beat, snare on two and four, off-beat bass and hats): the
    tempogram alone picks 2/3 of the tempo; the pulse-train check finds the beat."""
    piece = synth.render_piece("techno", "bass-synth", 131.0, "D minor", 12.0, SR, np.random.default_rng(1))
    facts = analyze(piece.mean(axis=1), SETTINGS)
    assert tempo_accuracy1(facts.bpm, 131.0), facts


def test_legato_music_without_drums_is_given_its_tempo():
    """The demo's classical style: bowed strings over a plucked bass on the beat. The whole
    spectrum's onsets blur the beat (periodicity under min_periodicity); the bass register's show it."""
    piece = synth.render_piece("classical", "strings", 86.0, "Eb major", 12.0, SR, np.random.default_rng(2))
    facts = analyze(piece.mean(axis=1), SETTINGS)
    assert tempo_accuracy1(facts.bpm, 86.0), facts
    assert facts.bpm_confidence >= SETTINGS.min_periodicity


@pytest.mark.parametrize(("instrument", "seed"), [("pad", 0), ("pad", 1), ("bell", 0), ("bell", 1)])
def test_music_without_a_pulse_stays_without_a_tempo_in_every_register(instrument, seed):
    """The demo's ambient style (slow pads, a note every half bar at random, a bass note every two
    bars): no register shows a beat, so no tempo, though a key may be heard."""
    piece = synth.render_piece("ambient", instrument, 70.0, "E major", 12.0, SR, np.random.default_rng(seed))
    facts = analyze(piece.mean(axis=1), SETTINGS)
    assert facts.bpm is None and facts.bpm_confidence == 0 and facts.beat_count == 0, facts


@pytest.mark.parametrize(
    ("tonic", "mode", "chords"),
    [
        ("A", "minor", ["A:min", "G:maj", "F:maj", "G:maj"]),  # natural minor: every pitch is C major's
        ("G", "minor", ["G:min", "F:maj", "Eb:maj", "F:maj"]),  # a profile alone reads F major (the held chord)
        ("C", "major", ["D:min", "G:maj", "C:maj", "C:maj"]),  # ii-V-I: a profile alone reads G major
    ],
)
def test_the_bass_tells_a_key_from_the_keys_that_share_its_pitches(tonic, mode, chords):
    """A natural-minor vamp (i-bVII-bVI-bVII) has no leading tone: its pitches are its relative
    major's, and its most-held chord is bVII. The diatonic collection, then the bass's home note,
    give the key."""
    facts = analyze(chord_progression(tonic, chords, 110.0, 12.0), SETTINGS)
    assert (facts.key, facts.mode) == (tonic, mode), facts
    assert facts.key_confidence >= SETTINGS.min_tonality
