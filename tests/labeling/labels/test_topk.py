"""The chunked top-K search is exact: the same captions, scores and order as sorting every
score at once, for any clip batch and caption chunk size, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labeling.labels.topk import CaptionIndex


def unit_vectors(rng: np.random.Generator, count: int, dim: int = 32) -> np.ndarray:
    v = rng.standard_normal((count, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(queries: np.ndarray, captions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every score at once (float64), sorted by score descending, then caption index."""
    scores = queries.astype(np.float64) @ captions.astype(np.float64).T
    order = np.array([sorted(range(len(row)), key=lambda i: (-row[i], i))[:k] for row in scores])
    return np.take_along_axis(scores, order, 1).astype(np.float32), order


@pytest.mark.parametrize("clip_batch,caption_chunk", [(1, 7), (5, 64), (64, 1000), (3, 3)])
@pytest.mark.parametrize("k", [1, 10])
def test_chunked_search_equals_brute_force(clip_batch, caption_chunk, k):
    rng = np.random.default_rng(k * 100 + caption_chunk)
    captions, queries = unit_vectors(rng, 300), unit_vectors(rng, 23)
    captions[150] = captions[7]  # an exact tie across chunks: the lower index comes first
    scores, indices = CaptionIndex(captions, torch.device("cpu"), torch.float32, caption_chunk).search(
        queries, k, clip_batch
    )
    want_scores, want_indices = brute_force(queries, captions, k)
    assert np.array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-7)


@pytest.mark.parametrize("caption_chunk", [3, 5, 100])
def test_equal_scores_go_to_the_lowest_index(caption_chunk):
    # Entries of +-0.5 make every score exact in float32, so the ties are real ties.
    rng = np.random.default_rng(caption_chunk)
    captions = np.zeros((40, 8), dtype=np.float32)
    for row in captions:
        row[rng.choice(8, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    queries = captions[:6]
    _, indices = CaptionIndex(captions, torch.device("cpu"), torch.float32, caption_chunk).search(queries, 7, 4)
    _, want = brute_force(queries, captions, 7)
    assert np.array_equal(indices, want)


def test_vocabulary_smaller_than_k_gives_every_caption():
    rng = np.random.default_rng(1)
    scores, indices = CaptionIndex(unit_vectors(rng, 4), torch.device("cpu"), torch.float32, 2).search(
        unit_vectors(rng, 3), 10, 2
    )
    assert indices.shape == (3, 4) and sorted(indices[0]) == [0, 1, 2, 3]
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_half_precision_search_reports_float32_exact_scores():
    rng = np.random.default_rng(2)
    captions, queries = unit_vectors(rng, 500, dim=64), unit_vectors(rng, 8, dim=64)
    # bfloat16 stands in for a GPU's float16 here: the search runs in low precision, the scores do not.
    scores, indices = CaptionIndex(captions, torch.device("cpu"), torch.bfloat16, 128).search(queries, 5, 4)
    exact = np.einsum("bd,bkd->bk", queries.astype(np.float64), captions[indices].astype(np.float64))
    np.testing.assert_allclose(scores, exact, rtol=1e-6)
    best = (queries @ captions.T).max(axis=1)
    assert np.all(scores[:, 0] >= best - 0.02)  # low precision may swap near neighbours, never miss by much
