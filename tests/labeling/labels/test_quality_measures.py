"""Label-quality measures against values worked out by hand on constructed similarity matrices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from labeling.labels.quality import measures
from labeling.labels.quality.report import retrieval

# Three clips (rows), three tags (columns); clip 0 knows tag 0, clip 1 tag 1, clip 2 tags 1 and 2.
RELEVANT = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]], dtype=bool)
PERFECT = np.where(RELEVANT, 0.9, 0.1)
REVERSED = -PERFECT


def test_perfect_scores_are_one_and_reversed_ones_fall_to_the_floor():
    assert measures.top1_accuracy(PERFECT, RELEVANT) == 1.0
    assert measures.mean_average_precision(PERFECT, RELEVANT)[0] == 1.0
    assert measures.recall_at_k(PERFECT, RELEVANT, 1) == 1.0
    assert measures.top1_accuracy(REVERSED, RELEVANT) == 0.0
    assert measures.recall_at_k(REVERSED, RELEVANT, 1) == 0.0
    # Reversed, every relevant clip is ranked below every other: tag 0's one positive is 3rd of 3 (AP 1/3),
    # tag 1's two are 2nd and 3rd ((1/2 + 2/3) / 2 = 7/12), tag 2's one is 3rd (1/3).
    assert measures.mean_average_precision(REVERSED, RELEVANT)[0] == pytest.approx((1 / 3 + 7 / 12 + 1 / 3) / 3)


def test_average_precision_by_hand():
    # Ranked best first: relevant, not, relevant, not, relevant -> (1/1 + 2/3 + 3/5) / 3.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    relevant = np.array([1, 0, 1, 0, 1], dtype=bool)
    assert measures.average_precision(scores, relevant) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # Equal scores rank in position order: the same figure when all scores tie.
    assert measures.average_precision(np.zeros(5), relevant) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # and equal scores rank earlier positions first: two relevant clips in front, all tied, are ranked 1st and 2nd.
    assert measures.average_precision(np.zeros(5), np.array([1, 1, 0, 0, 0], dtype=bool)) == 1.0
    assert measures.top1_accuracy(np.zeros((1, 3)), np.array([[1, 0, 0]], dtype=bool)) == 1.0


def test_top1_takes_the_best_tag_and_counts_any_known_one():
    similarity = np.array([[0.2, 0.5, 0.1], [0.1, 0.3, 0.2], [0.0, 0.1, 0.4]])
    # Clip 0 picks tag 1 (wrong), clip 1 tag 1 (right), clip 2 tag 2 (right: it knows 1 and 2).
    assert measures.top1_accuracy(similarity, RELEVANT) == pytest.approx(2 / 3)
    assert measures.top1_chance(RELEVANT) == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)


@pytest.mark.parametrize(("positives", "items"), [(1, 1), (1, 4), (2, 4), (3, 5), (5, 5)])
def test_average_precision_chance_is_the_mean_over_every_ranking(positives, items):
    relevant = np.array([True] * positives + [False] * (items - positives))
    scores = np.arange(items, 0, -1, dtype=float)
    every = [
        measures.average_precision(scores, relevant[list(order)]) for order in itertools.permutations(range(items))
    ]
    assert measures.average_precision_chance(positives, items) == pytest.approx(np.mean(every))


def test_recall_by_hand_and_its_chance():
    # Two queries over four clips: query 0's clip (2) is ranked 3rd, query 1's clips (0, 3) 1st and 2nd.
    similarity = np.array([[0.4, 0.3, 0.2, 0.1], [0.9, 0.1, 0.2, 0.5]])
    relevant = np.array([[0, 0, 1, 0], [1, 0, 0, 1]], dtype=bool)
    assert measures.recall_at_k(similarity, relevant, 1) == 0.5
    assert measures.recall_at_k(similarity, relevant, 2) == 0.5
    assert measures.recall_at_k(similarity, relevant, 3) == 1.0
    # k random clips out of 4 miss one relevant clip with C(3, k) / C(4, k), two with C(2, k) / C(4, k).
    for k in (1, 2, 3, 10):
        miss = [math.comb(3, k) / math.comb(4, k) if k <= 4 else 0, math.comb(2, k) / math.comb(4, k) if k <= 4 else 0]
        assert measures.recall_chance(relevant, k) == pytest.approx(1 - np.mean(miss))


def test_selection_precision_pools_labels_and_averages_their_similarity():
    known = [{"a", "b", "q"}, {"c"}]  # q: a known tag the vocabulary lacks
    plain = [[("a", 0.9), ("x", 0.8)], [("y", 0.7)]]  # the most similar: 1 of 3 labels known (pooled, not per clip)
    balanced = [[("a", 0.9), ("b", 0.5)], [("c", 0.4), ("z", 0.6)]]  # rarer captions: 3 of 4 known, less similar
    assert measures.selection_precision(plain, known) == (pytest.approx(1 / 3), pytest.approx(0.8), 3)
    assert measures.selection_precision(balanced, known) == (0.75, pytest.approx(0.6), 4)
    vocabulary = {"a", "b", "c", "x", "y", "z", "w", "v"}
    assert measures.selection_chance(known, vocabulary) == pytest.approx((2 / 8 + 1 / 8) / 2)


def test_scores_without_information_land_on_the_chance_levels():
    rng = np.random.default_rng(0)
    relevant = rng.random((3000, 12)) < 0.2
    relevant[np.arange(3000), rng.integers(0, 12, 3000)] = True  # every clip knows a tag
    similarity = rng.standard_normal(relevant.shape)
    assert measures.top1_accuracy(similarity, relevant) == pytest.approx(measures.top1_chance(relevant), abs=0.02)
    average, chance, tags = measures.mean_average_precision(similarity, relevant)
    assert tags == 12 and average == pytest.approx(chance, abs=0.01)
    queries = relevant.T  # each tag as a query over the clips
    for k in (1, 10):
        assert measures.recall_at_k(similarity.T, queries, k) == pytest.approx(
            measures.recall_chance(queries, k), abs=0.3
        )


def test_retrieval_finds_a_caption_s_own_clips_among_all():
    """Captions pointing at their own item's clips: recall@1 is 1; pointing away from them, 0."""
    clip_ids = ["c0", "c1", "c2", "c3"]
    items = {"c0": "a", "c1": "a", "c2": "b", "c3": "c"}  # item a has two clips
    audio = np.eye(4)
    toward = [("a", audio[1]), ("b", audio[2]), ("c", audio[3])]
    found = retrieval(toward, items, clip_ids, audio)
    assert found["queries"] == 3 and found["recall@1"]["value"] == 1.0
    # k random clips of 4 miss item a's two with C(2, 1) / C(4, 1), b's or c's one with C(3, 1) / C(4, 1).
    assert found["recall@1"]["chance"] == pytest.approx(1 - (1 / 2 + 3 / 4 + 3 / 4) / 3, abs=1e-6)
    assert found["recall@10"] == {"value": 1.0, "chance": 1.0}
    away = [("a", audio[3]), ("b", audio[0]), ("c", audio[2])]
    assert retrieval(away, items, clip_ids, audio)["recall@1"]["value"] == 0.0


def test_average_precision_agrees_with_scikit_learn_on_scores_without_ties():
    metrics = pytest.importorskip("sklearn.metrics")  # an independent implementation (librosa brings it)
    rng = np.random.default_rng(1)
    for _ in range(20):
        scores, relevant = rng.standard_normal(40), rng.random(40) < 0.3
        relevant[0] = True
        assert measures.average_precision(scores, relevant) == pytest.approx(
            metrics.average_precision_score(relevant, scores)
        )
