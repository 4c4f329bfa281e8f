"""Frequency-balanced draws: each draw picks a caption with probability proportional to
1 / frequency among those left, rare captions win more often than plain sampling from the
top-K would give them, and the draw depends only on (clip_id, vocabulary, run seed)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from labeling.labels.balance import balanced_draws, draw_keys, uniforms

CLIPS = [f"clip-{i}" for i in range(20000)]


def test_draws_depend_on_clip_vocabulary_and_seed_only():
    frequencies = np.tile([50, 3, 9, 1, 20, 7, 2, 40, 5, 11], (4, 1))
    keys = draw_keys(["a", "b", "a", "c"], "tags", 0)
    draws = balanced_draws(frequencies, 6, keys)
    assert np.array_equal(draws[0], draws[2]) and not np.array_equal(draws[0], draws[1])
    assert np.array_equal(
        draws[1:2], balanced_draws(frequencies[:1], 6, draw_keys(["b"], "tags", 0))
    )  # alone or in a unit
    assert len({*draw_keys(["a"], "tags", 0), *draw_keys(["a"], "llm_long", 0), *draw_keys(["a"], "tags", 1)}) == 3
    assert all(len(set(row)) == 6 and set(row) <= set(range(10)) for row in draws)  # without replacement


def test_uniforms_are_uniform_and_fixed():
    u = uniforms(draw_keys(CLIPS[:5000], "v", 0), 4)
    assert u.min() >= 0 and u.max() < 1 and stats.kstest(u.ravel(), "uniform").pvalue > 1e-4
    # splitmix64 seeded with 0 begins 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (Vigna's reference sequence).
    assert uniforms(np.array([0], dtype=np.uint64), 2).tolist() == [
        [(0xE220A8397B1DCDAF >> 11) / 2**53, (0x6E789E6AA1B965F4 >> 11) / 2**53]
    ]


def test_short_lists_leave_the_missing_draws_empty():
    draws = balanced_draws(np.array([[4, 2, 0, 0], [1, 1, 1, 1]]), 3, draw_keys(["a", "b"], "v", 0))
    assert sorted(draws[0][:2]) == [0, 1] and draws[0][2] == -1 and (draws[1] >= 0).all()


def test_first_draw_follows_inverse_frequency():
    """Chi-square goodness of fit of 20,000 first draws against p_i = (1/f_i) / sum(1/f)."""
    frequencies = np.array([1, 2, 4, 8, 16])
    firsts = balanced_draws(np.tile(frequencies, (len(CLIPS), 1)), 1, draw_keys(CLIPS, "tags", 7))[:, 0]
    expected = (1 / frequencies) / (1 / frequencies).sum() * len(CLIPS)
    assert stats.chisquare(np.bincount(firsts, minlength=5), expected).pvalue > 1e-4


def test_second_draw_is_proportional_among_the_rest():
    draws = balanced_draws(np.tile([1, 1, 3], (len(CLIPS), 1)), 2, draw_keys(CLIPS, "v", 0))
    # After drawing 0 (weight 1 of 1 + 1 + 1/3), caption 1 follows with 1 / (1 + 1/3) = 0.75.
    after_zero = draws[draws[:, 0] == 0, 1]
    assert stats.binomtest(int((after_zero == 1).sum()), len(after_zero), 0.75).pvalue > 1e-4


def test_rare_captions_are_drawn_more_often_than_plain_sampling_would():
    """A corpus whose top-K lists share a few popular captions: balanced draws give the rare
    ones clearly more labels than uniform sampling of K' from the top-K (binomial test)."""
    rng = np.random.default_rng(0)
    clips, k_prime, popular = 3000, 3, 8
    lists = np.array(
        [
            np.concatenate([rng.choice(popular, 6, replace=False), popular + rng.choice(500, 4, replace=False)])
            for _ in range(clips)
        ]
    )
    frequency = np.bincount(lists.ravel(), minlength=popular + 500)
    draws = balanced_draws(frequency[lists], k_prime, draw_keys(CLIPS[:clips], "tags", 0))
    rare = int((np.take_along_axis(lists, draws, 1) >= popular).sum())
    test = stats.binomtest(rare, clips * k_prime, 4 / 10, alternative="greater")  # plain: 4 of 10 candidates are rare
    assert rare / (clips * k_prime) > 0.9 and test.pvalue < 1e-12
