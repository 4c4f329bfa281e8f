"""KL divergence between the tag distributions of generated and reference audio, paired by prompt.

The role PaSST's classifier plays in stable-audio-metrics is played by CLAP zero-shot: a
clip's tag distribution is the softmax over a tag vocabulary of its cosine similarity to
each tag's text embedding, divided by a temperature. KL(reference || generated) per pair
says how much of what the reference sounds like the generated clip misses.
"""

from __future__ import annotations

import numpy as np

# Keeps log() finite where a distribution underflows to zero; far below any probability that matters.
PROBABILITY_FLOOR = 1e-12


def tag_probabilities(audio: np.ndarray, tags: np.ndarray, temperature: float) -> np.ndarray:
    """(N, D) audio and (T, D) tag embeddings, both L2-normalized -> (N, T) probabilities (rows sum to 1)."""
    logits = (np.asarray(audio, np.float64) @ np.asarray(tags, np.float64).T) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def kl_divergence(reference: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Row-wise KL(reference || generated) in nats, (N, T) and (N, T) -> (N,)."""
    p = np.clip(np.asarray(reference, np.float64), PROBABILITY_FLOOR, None)
    q = np.clip(np.asarray(generated, np.float64), PROBABILITY_FLOOR, None)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    return (p * (np.log(p) - np.log(q))).sum(axis=1)
