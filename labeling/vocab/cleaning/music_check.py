"""The optional CLAP check for non-descriptive sentences: is a sentence near any music description?

CLAP's text tower was trained to put a caption near the audio it describes, so a sentence
that describes how music sounds lands near other such descriptions, and one about a chart
position or a band's history lands far from all of them. A sentence whose best cosine
similarity to the reference descriptions is below the threshold is dropped
(non_descriptive:clap). The best similarities of every checked sentence are counted in a
histogram that units can add up, so a run's summary shows their quantiles: that is how a
threshold is chosen for a model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from labeling.clap.backend import load_clap
from labeling.vocab.config import ClapCheckConfig

RULE = "non_descriptive:clap"
BINS = 200  # 0.01 wide over [-1, 1]
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)


class MusicSimilarityCheck:
    def __init__(self, config: ClapCheckConfig) -> None:
        self.threshold = config.threshold
        self.clap = load_clap(config.clap)
        self.references = self.clap.embed_text(list(config.descriptions))  # (R, D), L2-normalized

    def best_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) each text's highest cosine similarity to a reference; embedded in the model's text batches."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return (self.clap.embed_text(list(texts)) @ self.references.T).max(axis=1)

    def keep(self, texts: Sequence[str], histogram: np.ndarray) -> list[bool]:
        """Whether each text passes; its best similarity is counted in `histogram` (BINS int64)."""
        best = self.best_similarity(texts)
        histogram += similarity_histogram(best)
        return [bool(s >= self.threshold) for s in best]


@functools.lru_cache(maxsize=1)
def music_check(config: ClapCheckConfig) -> MusicSimilarityCheck:
    """This process's check: CLAP and the references' embeddings, made on first use."""
    return MusicSimilarityCheck(config)


def similarity_histogram(similarities: np.ndarray) -> np.ndarray:
    bins = np.clip(((similarities + 1) / 2 * BINS).astype(np.int64), 0, BINS - 1)
    return np.bincount(bins, minlength=BINS).astype(np.int64)


def similarity_quantiles(histogram: Sequence[int]) -> dict[str, float]:
    """Quantiles of the counted similarities, each the upper edge of its 0.01-wide bin."""
    counts = np.asarray(histogram, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return {}
    cumulative = np.cumsum(counts)
    edges = np.linspace(-1, 1, BINS + 1)[1:]
    return {f"p{round(q * 100)}": round(float(edges[np.searchsorted(cumulative, q * total)]), 2) for q in QUANTILES}
