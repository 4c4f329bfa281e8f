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
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :k]
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


def around(rng: np.random.Generator, centers: np.ndarray, count: int, spread: float) -> np.ndarray:
    """Unit vectors clustered around the centers, as CLAP's captions and clips are: a clip's
    best captions lie within a few thousandths of each other."""
    noise = rng.standard_normal((count, centers.shape[1])).astype(np.float32) / np.sqrt(centers.shape[1])
    v = centers[rng.integers(0, len(centers), count)] + spread * noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_search_finds_the_exact_top_k_on_clustered_vectors(dtype):
    """A GPU searches in float16 (torch's CPU can too, and in bfloat16); the lists must be those
    of float64 all the same, on every device."""
    rng = np.random.default_rng(0)
    centers = unit_vectors(rng, 40, dim=512)
    captions, clips = around(rng, centers, 5000, 0.3), around(rng, centers, 64, 0.8)
    captions[100:150] = captions[99]  # 51 equal captions: only float64 settles their tie (by index)
    clips[0] = captions[99] + 0.01 * clips[1]
    clips[0] /= np.linalg.norm(clips[0])
    index = CaptionIndex(captions, torch.device("cpu"), dtype, 1024)
    scores, indices = index.search(clips, 10, 16)
    want_scores, want_indices = brute_force(clips, captions, 10)
    assert np.array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-7)
    assert list(indices[0]) == list(range(99, 109))
    # The case is real: the plain low-precision top 10 is another set for many clips.
    plain = torch.topk((torch.from_numpy(clips).to(dtype) @ torch.from_numpy(captions).to(dtype).T).float(), 10)
    assert sum(set(a) != set(b) for a, b in zip(plain.indices.numpy(), want_indices, strict=True)) >= 10
    assert index.searched_again >= 1  # the equal captions at least are searched again


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_captions_closer_than_half_precision_resolves_are_searched_again(dtype):
    """A hundred captions a hundred-thousandth apart, the best at the highest indices: half
    precision cannot tell them apart, so K + margin candidates miss the best; the clip is
    searched again in a higher precision and gets float64's list."""
    rng = np.random.default_rng(1)
    clip = unit_vectors(rng, 1, dim=512)[0]
    other = rng.standard_normal(512)
    other -= (other @ clip) * clip
    other /= np.linalg.norm(other)
    cosines = 0.9 - 1e-5 * np.arange(99, -1, -1)  # caption 100 + i scores 0.9 - 1e-5 (99 - i)
    close = np.outer(cosines, clip) + np.outer(np.sqrt(1 - cosines**2), other)
    captions = np.concatenate([unit_vectors(rng, 100, dim=512), close]).astype(np.float32)
    index = CaptionIndex(captions, torch.device("cpu"), dtype, 64)
    scores, indices = index.search(clip[None].astype(np.float32), 10, 1)
    assert list(indices[0]) == list(range(199, 189, -1)) and index.searched_again == 1
    np.testing.assert_allclose(scores, brute_force(clip[None], captions, 10)[0], rtol=1e-7)
