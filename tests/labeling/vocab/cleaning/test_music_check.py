"""The CLAP check for non-descriptive sentences: best similarity to references, threshold, quantiles."""

import numpy as np
import pytest

from labeling.vocab.cleaning.music_check import BINS, MusicSimilarityCheck, similarity_histogram, similarity_quantiles
from labeling.vocab.config import DEFAULT_MUSIC_DESCRIPTIONS, ClapCheckConfig

RANDOM_CLAP = {"backend": "random", "architecture": "HTSAT-mini"}


def test_a_reference_itself_is_kept_and_others_fall_below_a_threshold_under_one():
    references = ["A calm piano melody plays over soft sustained strings.", "Fast techno with a pounding kick drum."]
    check = MusicSimilarityCheck(ClapCheckConfig(clap=RANDOM_CLAP, references=references, threshold=0.9999))
    texts = [references[1], "The band toured Europe in a bus.", references[0], "A slow ambient piece with warm pads."]
    best = check.best_similarity(texts)
    assert best[0] == pytest.approx(1.0, abs=1e-5) and best[2] == pytest.approx(1.0, abs=1e-5)
    assert best[1] < 0.9999 and best[3] < 0.9999
    histogram = np.zeros(BINS, dtype=np.int64)
    assert check.keep(texts, histogram) == [True, False, True, False]
    assert histogram.sum() == 4 and histogram[-1] >= 2
    assert check.keep([], histogram) == [] and histogram.sum() == 4


def test_without_references_the_built_in_descriptions_are_used():
    config = ClapCheckConfig(clap=RANDOM_CLAP, threshold=0.3)
    assert config.descriptions == DEFAULT_MUSIC_DESCRIPTIONS and len(set(config.descriptions)) == 20
    with pytest.raises(ValueError, match="at least 1"):
        ClapCheckConfig(clap=RANDOM_CLAP, references=[], threshold=0.3)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        ClapCheckConfig(clap=RANDOM_CLAP, threshold=1.5)


@pytest.mark.parametrize(
    "values,expected",
    [
        (
            [-0.5] * 10 + [0.305] * 80 + [0.9] * 10,
            {"p1": -0.49, "p5": -0.49, "p25": 0.31, "p50": 0.31, "p75": 0.31, "p95": 0.91},
        ),
        ([1.0, -1.0], {"p1": -0.99, "p5": -0.99, "p25": -0.99, "p50": -0.99, "p75": 1.0, "p95": 1.0}),
        ([], {}),
    ],
)
def test_quantiles_come_from_histograms_that_add_up(values, expected):
    halves = [np.asarray(values[: len(values) // 2]), np.asarray(values[len(values) // 2 :])]
    histogram = sum(similarity_histogram(h) for h in halves)  # as units' histograms are added
    assert similarity_quantiles(histogram.tolist()) == expected
