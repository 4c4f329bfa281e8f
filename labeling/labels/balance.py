"""Frequency-balanced pseudo-labels (Noise2Music): rare captions get a boost.

A caption's frequency is how many clips have it among their top-K, counted over the whole
corpus (the stage's one global step). Per clip and vocabulary, K' labels are drawn from
the top-K without replacement, each draw picking a caption with probability proportional
to 1 / frequency among those not yet drawn.

The randomness is a pure function of (run seed, vocabulary, clip_id): a 64-bit key hashed
from them feeds a splitmix64 counter sequence, one uniform number per candidate. So every
runner, partitioning and rerun draws alike, and a unit's clips are drawn all at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def draw_keys(clip_ids: Sequence[str], vocab: str, run_seed: int) -> np.ndarray:
    """(n,) uint64: each clip's key for one vocabulary's draw."""
    prefix = f"{run_seed}\0{vocab}\0".encode()
    return np.array(
        [int.from_bytes(hashlib.blake2b(prefix + c.encode(), digest_size=8).digest(), "little") for c in clip_ids],
        dtype=np.uint64,
    )


def uniforms(keys: np.ndarray, count: int) -> np.ndarray:
    """(n, count) floats in [0, 1): the first `count` outputs of splitmix64 seeded with each key."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        z = keys[:, None] + _GOLDEN * np.arange(1, count + 1, dtype=np.uint64)[None, :]
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def balanced_draws(frequencies: np.ndarray, wanted: int, keys: np.ndarray) -> np.ndarray:
    """Positions into each clip's top-K list of `wanted` captions drawn without replacement
    with probability proportional to 1 / frequency, in draw order; -1 where a clip has
    fewer candidates.

    frequencies: (n, K) ints, the global frequency of each candidate, 0 for none (a shorter
    list after the similarity threshold). Efraimidis and Spirakis' one-pass form of
    successive weighted draws: candidate i gets the key u_i ** (1 / w_i) with w_i = 1 / f_i;
    the largest keys, in order, are distributed as successive draws. Keys are compared as
    log(u_i) * f_i.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    present = frequencies > 0
    with np.errstate(divide="ignore"):
        order_keys = np.where(present, np.log1p(-uniforms(keys, frequencies.shape[1])) * frequencies, -np.inf)
    positions = np.argsort(-order_keys, axis=1, kind="stable")[:, :wanted]
    available = present.sum(axis=1, keepdims=True)
    return np.where(np.arange(positions.shape[1])[None, :] < available, positions, -1)
