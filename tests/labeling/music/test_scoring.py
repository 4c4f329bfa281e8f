"""The MIREX tempo and key scores, on hand-checked cases."""

import pytest

from labeling.music.scoring import accuracy_report, key_score, parse_key, tempo_accuracy1, tempo_accuracy2


@pytest.mark.parametrize(
    ("estimate", "truth", "acc1", "acc2"),
    [
        (120.0, 120.0, True, True),
        (124.7, 120.0, True, True),
        (125.5, 120.0, False, False),
        (60.0, 120.0, False, True),
        (360.0, 120.0, False, True),
        (40.5, 120.0, False, True),
        (80.0, 120.0, False, False),
        (None, 120.0, False, False),
        (None, 0.0, True, True),  # no audible pulse: unknown is right
        (70.0, 0.0, False, False),
    ],
)
def test_tempo_accuracies(estimate, truth, acc1, acc2):
    assert tempo_accuracy1(estimate, truth) is acc1
    assert tempo_accuracy2(estimate, truth) is acc2


@pytest.mark.parametrize(
    ("estimate", "truth", "score"),
    [
        ("A minor", "A minor", 1.0),
        ("a:min", "A minor", 1.0),
        ("E minor", "A minor", 0.5),
        ("D minor", "A minor", 0.5),
        ("C major", "A minor", 0.3),
        ("A minor", "C major", 0.3),
        ("A major", "A minor", 0.2),
        ("Bb minor", "A minor", 0.0),
        ("C# major", "Db major", 1.0),
        ("F major", "C major", 0.5),
        (None, "C major", 0.0),
    ],
)
def test_key_score(estimate, truth, score):
    assert key_score(estimate, truth) == score


def test_bad_key_names_say_what_was_expected():
    with pytest.raises(ValueError, match="'H dorian'"):
        parse_key("H dorian")


def test_report_counts_only_clips_with_truth():
    report = accuracy_report(
        [(120.0, "A minor", 60.0, "A minor"), (None, None, 100.0, None), (90.0, "C major", None, "C major")]
    )
    assert report["tempo_clips"] == 2 and report["tempo_accuracy1"] == 0 and report["tempo_accuracy2"] == 0.5
    assert report["key_clips"] == 2 and report["key_weighted_score"] == 1.0 and report["tempo_unknown"] == 1


def test_pieces_without_a_pulse_count_as_right_when_unknown_and_are_reported_apart():
    report = accuracy_report([(None, None, 0.0, None), (72.0, None, 0.0, None), (120.0, None, 120.0, None)])
    assert report["tempo_accuracy1"] == round(2 / 3, 4) and report["tempo_accuracy2"] == round(2 / 3, 4)
    assert (report["tempo_no_pulse"], report["tempo_no_pulse_unknown"], report["tempo_unknown"]) == (2, 1, 1)
