"""Label-quality measures on similarity matrices and drawn labels, each with its chance level.

Every ranking is best first with ties broken by position (the lower column or clip index
first), so the figures are the same on every run. The chance level of a measure is its
expected value when the scores carry no information (every order equally likely): what
random CLAP weights should reach.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _best_first(scores: np.ndarray) -> np.ndarray:
    """Column order of each row by score, best first, equal scores in column order."""
    return np.argsort(-scores, axis=-1, kind="stable")


def top1_accuracy(similarity: np.ndarray, relevant: np.ndarray) -> float:
    """Zero-shot tag accuracy: the share of clips (rows) whose most similar tag (column) is one
    of their known tags."""
    best = _best_first(similarity)[:, 0]
    return float(relevant[np.arange(len(relevant)), best].mean())


def top1_chance(relevant: np.ndarray) -> float:
    """A tag picked at random is known with probability (known tags) / (tags), per clip."""
    return float((relevant.sum(axis=1) / relevant.shape[1]).mean())


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """One tag's average precision: the clips ranked by similarity to the tag, the precision
    (relevant clips so far / rank) at the rank of each relevant clip, averaged over them."""
    hits = relevant[_best_first(scores)]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def average_precision_chance(positives: int, items: int) -> float:
    """The expected average precision of a random ranking of `items` with `positives` relevant:
    a relevant item at rank r has 1 + (R - 1)(r - 1) / (N - 1) relevant items at or above it on
    average; dividing by r and averaging over r = 1..N gives
    (R - 1) / (N - 1) + H_N (N - R) / (N (N - 1)), H_N the N-th harmonic number."""
    if items == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, items + 1)))
    return (positives - 1) / (items - 1) + harmonic * (items - positives) / (items * (items - 1))


def mean_average_precision(similarity: np.ndarray, relevant: np.ndarray) -> tuple[float, float, int]:
    """mAP over the tags (columns) some clip is known to have, its chance level, and how many tags it averages."""
    scored = np.flatnonzero(relevant.any(axis=0))
    aps = [average_precision(similarity[:, t], relevant[:, t]) for t in scored]
    chances = [average_precision_chance(int(relevant[:, t].sum()), len(relevant)) for t in scored]
    return float(np.mean(aps)), float(np.mean(chances)), len(scored)


def recall_at_k(similarity: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Retrieval recall@k: the share of queries (rows) with a relevant item (column) among their k best."""
    top = _best_first(similarity)[:, :k]
    return float(np.take_along_axis(relevant, top, axis=1).any(axis=1).mean())


def recall_chance(relevant: np.ndarray, k: int) -> float:
    """The chance that k items drawn at random hold one of a query's r relevant ones out of N:
    1 - C(N - r, k) / C(N, k), averaged over the queries."""
    items = relevant.shape[1]
    chances = []
    for r in relevant.sum(axis=1):
        miss = np.prod([(items - r - i) / (items - i) for i in range(min(k, items))])
        chances.append(1.0 - max(miss, 0.0))
    return float(np.mean(chances))


def selection_precision(
    selections: Sequence[Sequence[tuple[str, float]]], known: Sequence[set[str]]
) -> tuple[float, float, int]:
    """Precision of drawn labels: of all (caption_id, similarity) labels drawn for the clips,
    the share that are one of the clip's known tags, pooled over clips; the mean similarity
    of the drawn labels (what a draw gives up against the most similar captions); the count."""
    drawn = [
        (caption in tags, score) for labels, tags in zip(selections, known, strict=True) for caption, score in labels
    ]
    if not drawn:
        return 0.0, 0.0, 0
    hits, scores = zip(*drawn, strict=True)
    return float(np.mean(hits)), float(np.mean(scores)), len(drawn)


def selection_chance(known: Sequence[set[str]], vocabulary: set[str]) -> float:
    """Precision of labels drawn uniformly from the whole vocabulary: (known tags in it) / (its size), per clip."""
    return float(np.mean([len(tags & vocabulary) / len(vocabulary) for tags in known]))
