"""Exact top-K captions per clip by cosine similarity, in bounded memory.

The vocabulary's matrix stays on the device (half precision on a GPU); clips come in
batches, captions in chunks, so the largest scratch is one (clip batch x caption chunk)
score block whatever the corpus and vocabulary sizes. Each chunk's best K merge into a
running best K: the search is exhaustive (exact), not approximate. Results are ordered by
score, ties by caption index, so every runner writes the same lists.
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
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device=device, dtype=dtype)

    def search(self, queries: np.ndarray, k: int, clip_batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) clip vectors -> scores (B, k) float32 and caption indices (B, k) int64, best first."""
        k = min(k, self.size)
        scores = np.empty((len(queries), k), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        with torch.inference_mode():
            for start in range(0, len(queries), clip_batch):
                batch = torch.from_numpy(np.ascontiguousarray(queries[start:start + clip_batch], dtype=np.float32))
                s, i = self._search_batch(batch.to(device=self.device, dtype=self.dtype), k)
                scores[start:start + len(batch)], indices[start:start + len(batch)] = _canonical_order(s, i)
        return scores, indices

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        best_scores: torch.Tensor | None = None
        best_indices: torch.Tensor | None = None
        for start in range(0, self.size, self.caption_chunk):
            block = queries @ self.vectors[start:start + self.caption_chunk].T          # (B, chunk)
            s, i = torch.topk(block, min(k, block.shape[1]), dim=1)
            i = i + start
            if best_scores is not None:
                s, order = torch.topk(torch.cat([best_scores, s], dim=1), k, dim=1)
                i = torch.gather(torch.cat([best_indices, i], dim=1), 1, order)
            best_scores, best_indices = s, i
        return best_scores.float().cpu().numpy(), best_indices.cpu().numpy()


def _canonical_order(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then caption index ascending."""
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(indices, order, 1)

