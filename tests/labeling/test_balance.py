"""Frequency-balanced draws: each draw picks a caption with probability proportional to
1 / frequency among those left, rare captions win more often than plain sampling from the
top-K would give them, and the draw depends only on (clip_id, vocabulary, run seed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from labeling.balance import balanced_draw, draw_seed


def test_same_clip_same_draw_and_seeds_differ_by_clip_vocab_and_run():
    frequencies = np.array([50, 3, 9, 1, 20, 7, 2, 40, 5, 11])
    seed = draw_seed("clip-a", "tags", 0)
    assert np.array_equal(balanced_draw(frequencies, 6, seed), balanced_draw(frequencies, 6, draw_seed("clip-a", "tags", 0)))
    assert len({seed, draw_seed("clip-b", "tags", 0), draw_seed("clip-a", "llm_long", 0), draw_seed("clip-a", "tags", 1)}) == 4
    draw = balanced_draw(frequencies, 6, seed)
    assert len(draw) == len(set(draw)) == 6 and set(draw) <= set(range(10))   # without replacement
    assert len(balanced_draw(frequencies[:2], 6, seed)) == 2                  # fewer candidates than K'


def test_first_draw_follows_inverse_frequency():
    """Chi-square goodness of fit of 20,000 first draws against p_i = (1/f_i) / sum(1/f)."""
    frequencies = np.array([1, 2, 4, 8, 16])
    firsts = np.bincount([balanced_draw(frequencies, 1, draw_seed(f"clip-{i}", "tags", 7))[0] for i in range(20000)],
                         minlength=5)
    expected = (1 / frequencies) / (1 / frequencies).sum() * 20000
    assert stats.chisquare(firsts, expected).pvalue > 1e-4


def test_second_draw_is_proportional_among_the_rest():
    frequencies = np.array([1, 1, 3])
    pairs = [tuple(balanced_draw(frequencies, 2, draw_seed(f"c{i}", "v", 0))) for i in range(20000)]
    # After drawing 0 (weight 1 of 1 + 1 + 1/3), caption 1 follows with 1 / (1 + 1/3) = 0.75.
    after_zero = [b for a, b in pairs if a == 0]
    assert stats.binomtest(sum(b == 1 for b in after_zero), len(after_zero), 0.75).pvalue > 1e-4


def test_rare_captions_are_drawn_more_often_than_plain_sampling_would():
    """A corpus whose top-K lists share a few popular captions: balanced draws give the rare
    ones clearly more labels than uniform sampling of K' from the top-K (binomial test)."""
    rng = np.random.default_rng(0)
    clips, k, k_prime, popular = 3000, 10, 3, 8
    lists = [np.concatenate([rng.choice(popular, 6, replace=False), popular + rng.choice(500, 4, replace=False)])
             for _ in range(clips)]
    frequency = np.bincount(np.concatenate(lists), minlength=popular + 500)
    rare_balanced = 0
    for i, captions in enumerate(lists):
        drawn = captions[balanced_draw(frequency[captions], k_prime, draw_seed(f"clip-{i}", "tags", 0))]
        rare_balanced += int((drawn >= popular).sum())
    uniform_share = 4 / k                                   # plain sampling: 4 of the 10 candidates are rare
    test = stats.binomtest(rare_balanced, clips * k_prime, uniform_share, alternative="greater")
    assert rare_balanced / (clips * k_prime) > 0.9 and test.pvalue < 1e-12


def test_a_candidate_without_frequency_is_an_error():
    with pytest.raises(ValueError, match="frequency >= 1"):
        balanced_draw(np.array([3, 0]), 1, 0)
