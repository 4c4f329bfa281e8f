"""Where a CLAP model runs and in which precision, and the batching both backends share."""

from __future__ import annotations

import abc
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from labeling.clap.backend import CONTEXT_TOKENS, ClapConfig, ClapError


def torch_device(config: ClapConfig) -> torch.device:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ClapError("clap.device is cuda but torch sees no GPU here; use --clap.device auto or cpu")
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def torch_dtype(config: ClapConfig, device: torch.device) -> torch.dtype:
    if config.precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if config.precision == "float16" and device.type == "cpu":
        raise ClapError("clap.precision float16 needs a GPU; on the CPU use float32 (or bfloat16)")
    return getattr(torch, config.precision)


def batches(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def set_threads(config: ClapConfig, device: torch.device) -> None:
    """A fixed thread count: a CPU forward pass's last bits depend on how many threads split it,
    and every engine must compute the same vectors (Ray starts workers with one thread)."""
    if device.type == "cpu":
        torch.set_num_threads(config.threads or os.cpu_count() or 1)


# The token lengths a text batch is padded to: each caption goes with the captions of its own
# bucket, so its forward pass has the same shape whatever else is embedded with it.
TEXT_LENGTHS = (8, 16, 24, 32, 48, 64, CONTEXT_TOKENS)


def embed_in_batches(
    items: np.ndarray, size: int, forward: Callable[[np.ndarray], torch.Tensor], dim: int, filler: Any
) -> np.ndarray:
    """forward(items[batch]) for every batch -> (N, dim) float32, L2-normalized in float32.

    The last batch is filled up to `size` with `filler` items. Every forward pass then has the
    same shape, which makes an item's vector independent of what it was batched with (kernels
    pick their blocking by shape), so any split of clips or captions into units embeds alike."""
    out = np.empty((len(items), dim), dtype=np.float32)
    with torch.inference_mode():
        for part in batches(len(items), size):
            batch = items[part]
            if len(batch) < size:
                batch = np.concatenate(
                    [batch, np.full((size - len(batch), *batch.shape[1:]), filler, dtype=batch.dtype)]
                )
            vectors = forward(batch)[: part.stop - part.start].float()
            out[part] = torch.nn.functional.normalize(vectors, dim=-1).cpu().numpy()
    return out


class BatchedEmbedder(abc.ABC):
    """embed_audio / embed_text of a backend, in batches of its configured sizes: a backend sets
    dim, audio_batch_size and text_batch_size and writes the two forward passes."""

    dim: int
    audio_batch_size: int
    text_batch_size: int
    tokenizer: Any  # a transformers tokenizer

    def embed_audio(self, windows: np.ndarray) -> np.ndarray:
        return embed_in_batches(windows, self.audio_batch_size, self._audio_forward, self.dim, filler=0)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Captions in batches of text_batch_size (filled up with empty captions), each batch of
        one token-length bucket (TEXT_LENGTHS) padded to it: a caption's vector depends on it alone."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        tokens = self.tokenizer(list(texts), truncation=True, max_length=CONTEXT_TOKENS)["input_ids"]
        buckets = [next(n for n in TEXT_LENGTHS if n >= len(ids)) for ids in tokens]
        for length in sorted(set(buckets)):
            rows = [i for i, bucket in enumerate(buckets) if bucket == length]
            out[rows] = embed_in_batches(
                np.asarray([texts[i] for i in rows], dtype=object),
                self.text_batch_size,
                functools.partial(self._text_forward, length=length),
                self.dim,
                filler="",
            )
        return out

    @abc.abstractmethod
    def _audio_forward(self, batch: np.ndarray) -> torch.Tensor:
        """Embeddings of one batch of 48 kHz windows (batch, samples)."""

    @abc.abstractmethod
    def _text_forward(self, texts: np.ndarray, length: int) -> torch.Tensor:
        """Embeddings of one batch of captions, their tokens padded to `length`."""
