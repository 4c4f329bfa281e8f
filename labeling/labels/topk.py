"""Exact top-K captions per clip by cosine similarity, in bounded memory, the same on every device.

The vocabulary's matrix stays on the device (half precision on a GPU); clips come in
batches, captions in chunks, so the largest scratch is one (clip batch x caption chunk)
score block whatever the corpus and vocabulary sizes. Each chunk's best merge into a
running best: the search is exhaustive, not approximate. In half precision, though, close
captions swap places (on clustered CLAP vectors a third of the clips got another top 10 in
float16), so the device keeps K + MARGIN candidates, which are re-scored in float64 from
the float32 vectors and the best K taken. That is provably the exact top K when the K-th
exact score beats the lowest candidate's score by more than the precision's error bound
(no caption left out can reach it); the few clips where it does not are searched again in
float32 on the device, then, if need be, in float64 on the host. Lists are ordered by the
float64 score, ties by caption index: every device, precision, batch and runner writes the
same lists and scores.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# Candidates the device's search keeps beyond K, for the exact re-rank to choose from.
MARGIN = 32


class CaptionIndex:
    """One vocabulary's L2-normalized caption vectors on a device, searchable by clip vectors."""

    def __init__(self, vectors: np.ndarray, device: torch.device, dtype: torch.dtype, caption_chunk: int) -> None:
        self.size = len(vectors)
        self.dim = vectors.shape[1] if vectors.ndim == 2 else 0
        self.device = device
        self.dtype = dtype
        self.caption_chunk = caption_chunk
        self.host = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors = torch.from_numpy(self.host).to(device=device, dtype=dtype)
        self._float32: torch.Tensor | None = None  # on the device, made the first time a half search falls short
        self.searched_again = 0  # clips whose candidates did not prove their top K (a figure for tests and benchmarks)

    def search(self, queries: np.ndarray, k: int, clip_batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) clip vectors -> scores (B, k) float32 and caption indices (B, k) int64, best first."""
        k = min(k, self.size)
        scores = np.empty((len(queries), k), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        with torch.inference_mode():
            for start in range(0, len(queries), clip_batch):
                batch = np.ascontiguousarray(queries[start : start + clip_batch], dtype=np.float32)
                scores[start : start + len(batch)], indices[start : start + len(batch)] = self._exact_top(batch, k)
        return scores, indices

    def _exact_top(self, batch: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch's exact top k: candidates from the fastest search, re-ranked in float64;
        a clip whose candidates do not prove its top k is searched again, more precisely."""
        scores = np.empty((len(batch), k), dtype=np.float64)
        indices = np.empty((len(batch), k), dtype=np.int64)
        pending = np.arange(len(batch))
        for vectors, dtype in self._precisions():
            exact = dtype == torch.float64
            wide = k if exact else min(k + MARGIN, self.size)
            queries = torch.from_numpy(batch[pending]).to(device=vectors.device, dtype=dtype)
            found, approximate = self._search_batch(queries, wide, vectors, dtype)
            rescored = np.einsum("bd,bkd->bk", batch[pending].astype(np.float64), self.host[found].astype(np.float64))
            ranked_scores, ranked = _canonical_order(rescored, found)
            scores[pending], indices[pending] = ranked_scores[:, :k], ranked[:, :k]
            if exact or wide == self.size:
                break
            # A caption left out scored at most the lowest candidate's approximate score, so its
            # exact score is at most that plus the precision's error: below the k-th, it cannot win.
            bound = approximate.min(axis=1) + _error_bound(dtype, self.dim, vectors.device)
            pending = pending[~(ranked_scores[:, k - 1] > bound)]
            if not len(pending):
                break
            self.searched_again += len(pending)
        return scores.astype(np.float32), indices

    def _precisions(self) -> Iterator[tuple[torch.Tensor, torch.dtype]]:
        """The matrix to search and the precision to score in, fastest first: the device's
        precision, float32 on the device, then float64 on the host (exact, chunk by chunk)."""
        yield self.vectors, self.dtype
        if self.dtype != torch.float32:
            if self._float32 is None:
                self._float32 = torch.from_numpy(self.host).to(self.device)
            yield self._float32, torch.float32
        yield torch.from_numpy(self.host), torch.float64

    def _search_batch(
        self, queries: torch.Tensor, k: int, vectors: torch.Tensor, dtype: torch.dtype
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices (B, k) of the k best captions by the scores computed in `dtype`, and those scores."""
        best_scores: torch.Tensor | None = None
        best_indices: torch.Tensor | None = None
        for start in range(0, self.size, self.caption_chunk):
            block = queries @ vectors[start : start + self.caption_chunk].to(dtype).T  # (B, chunk)
            s, i = _block_top(block, k)
            i = i + start
            if best_scores is not None:
                s, i = _merge(torch.cat([best_scores, s], dim=1), torch.cat([best_indices, i], dim=1), k)
            best_scores, best_indices = s, i
        return best_indices.cpu().numpy(), best_scores.float().cpu().numpy()


def _error_bound(dtype: torch.dtype, dim: int, device: torch.device) -> float:
    """How far a score of two unit vectors computed in `dtype` can be from the exact one: inputs
    and output rounded (3 units of rounding), products summed in float32 (dim x 2^-24), with
    room to spare for sums the device does in its low precision (cuBLAS may add split-K partial
    sums in half precision): 8 units of rounding and twice the float32 sum."""
    unit = {torch.float16: 2**-11, torch.bfloat16: 2**-8, torch.float32: 2**-24}[dtype]
    if dtype == torch.float32 and device.type == "cuda" and torch.get_float32_matmul_precision() != "highest":
        unit = 2**-8  # TF32 or bfloat16 products stand in for float32 ones
    return 8 * unit + dim * 2**-23


def _block_top(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row, equal scores at the cut going to the lowest column
    (torch.topk keeps an arbitrary one of equals)."""
    if k >= block.shape[1]:
        return block, torch.arange(block.shape[1], device=block.device).expand_as(block)
    extended, extended_indices = torch.topk(block, k + 1, dim=1)
    values, indices = extended[:, :k].clone(), extended_indices[:, :k].clone()
    tied = (extended[:, k - 1] == extended[:, k]).nonzero().squeeze(1)
    if len(tied):
        rows = block[tied]
        cut = values[tied, -1:]
        above = rows > cut
        equal = rows == cut
        chosen = above | (equal & (equal.cumsum(1) <= k - above.sum(1, keepdim=True)))
        indices[tied] = chosen.nonzero()[:, 1].reshape(len(tied), k)
        values[tied] = torch.gather(rows, 1, indices[tied])
    return values, indices


def _merge(scores: torch.Tensor, indices: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of a few candidates, by score then lowest index (two stable sorts)."""
    by_index = torch.argsort(indices, dim=1, stable=True)
    scores, indices = torch.gather(scores, 1, by_index), torch.gather(indices, 1, by_index)
    by_score = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return torch.gather(scores, 1, by_score), torch.gather(indices, 1, by_score)


def _canonical_order(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then caption index ascending."""
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(indices, order, 1)
