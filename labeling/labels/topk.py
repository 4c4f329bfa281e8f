"""Exact top-K captions per clip by cosine similarity, in bounded memory.

The vocabulary's matrix stays on the device (half precision on a GPU); clips come in
batches, captions in chunks, so the largest scratch is one (clip batch x caption chunk)
score block whatever the corpus and vocabulary sizes. Each chunk's best K merge into a
running best K: the search is exhaustive (exact), not approximate. The K winners' scores
are then recomputed in float64 from the float32 vectors, so reported scores do not depend
on the device, its precision or the batch a clip was searched in; lists are ordered by
that score, ties by caption index, so every runner writes the same lists.
"""

from __future__ import annotations

import numpy as np
import torch


class CaptionIndex:
    """One vocabulary's L2-normalized caption vectors on a device, searchable by clip vectors."""

    def __init__(self, vectors: np.ndarray, device: torch.device, dtype: torch.dtype, caption_chunk: int) -> None:
        self.size = len(vectors)
        self.device = device
        self.dtype = dtype
        self.caption_chunk = caption_chunk
        self.host = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors = torch.from_numpy(self.host).to(device=device, dtype=dtype)

    def search(self, queries: np.ndarray, k: int, clip_batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) clip vectors -> scores (B, k) float32 and caption indices (B, k) int64, best first."""
        k = min(k, self.size)
        scores = np.empty((len(queries), k), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        with torch.inference_mode():
            for start in range(0, len(queries), clip_batch):
                batch = np.ascontiguousarray(queries[start : start + clip_batch], dtype=np.float32)
                found = self._search_batch(torch.from_numpy(batch).to(device=self.device, dtype=self.dtype), k)
                exact = np.einsum("bd,bkd->bk", batch.astype(np.float64), self.host[found].astype(np.float64))
                scores[start : start + len(batch)], indices[start : start + len(batch)] = _canonical_order(exact, found)
        return scores, indices

    def _search_batch(self, queries: torch.Tensor, k: int) -> np.ndarray:
        best_scores: torch.Tensor | None = None
        best_indices: torch.Tensor | None = None
        for start in range(0, self.size, self.caption_chunk):
            block = queries @ self.vectors[start : start + self.caption_chunk].T  # (B, chunk)
            s, i = _block_top(block, k)
            i = i + start
            if best_scores is not None:
                s, i = _merge(torch.cat([best_scores, s], dim=1), torch.cat([best_indices, i], dim=1), k)
            best_scores, best_indices = s, i
        return best_indices.cpu().numpy()


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
