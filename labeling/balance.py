"""Frequency-balanced pseudo-labels (Noise2Music): rare captions get a boost.

A caption's frequency is how many clips have it among their top-K, counted over the whole
corpus (the stage's one global step). Per clip and vocabulary, K' labels are drawn from
the top-K without replacement, each draw picking a caption with probability proportional
to 1 / frequency among those not yet drawn. The draw's randomness comes from the clip's id,
the vocabulary and the run seed only, so every runner, partitioning and rerun draws alike.
"""

from __future__ import annotations

import hashlib

import numpy as np


def draw_seed(clip_id: str, vocab: str, run_seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{run_seed}\0{vocab}\0{clip_id}".encode()).digest()[:8], "little")


def balanced_draw(frequencies: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Positions (into the top-K list) of `count` captions drawn without replacement with
    probability proportional to 1 / frequency, in draw order.

    Efraimidis and Spirakis' one-pass form of sequential weighted draws: each candidate gets
    the key u ** (1 / w) with u uniform in (0, 1) and weight w = 1 / f; the largest keys, in
    order, are distributed as successive draws. Keys are compared as log(u) * f.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if np.any(frequencies <= 0):
        raise ValueError("every candidate has frequency >= 1: it is in at least this clip's top-K")
    u = np.random.default_rng(seed).random(len(frequencies))
    keys = np.log1p(-u) * frequencies        # log(1 - u): u in [0, 1) keeps the log finite
    return np.argsort(-keys, kind="stable")[: min(count, len(frequencies))]

