"""BS.1770-4 integrated loudness, with the K-weighting filter compiled by numba.

The filter is the one sequential pass over a clip's samples, and it was the largest of the
curation unit's own costs on short files (scipy's sosfilt on the channels as one complex signal,
then an einsum per hop). The kernel below does both in one loop over the samples, with the same
operations in the same order: the filter as scipy.signal.sosfilt runs it (transposed direct form
II, float64) and each hop's energy summed sample after sample, as einsum sums strided operands.
Every value is bit for bit what the scipy code gave (tests hold the two against each other), so
stored `lufs` values do not move; the one difference is in digital silence, where a filter state
that has decayed past any value that counts is set to zero rather than carried on through the
subnormal range, which costs the CPU 20-35 times more per sample. numba compiles without
floating-point contraction unless told to, so no fused multiply-add changes a rounding on CPUs
that have one.

The two channels' chains do the same operations side by side, so the kernel is compiled with
LLVM's SLP vectorizer, which puts each pair into one two-lane vector instruction: 31% less time
(7.3 -> 5.1 ms for 30 s of stereo here). A lane computes exactly what the scalar instruction
did, so every value stays the same. numba leaves SLP off by default (numba issue 8705, a
miscompilation elsewhere), so it is turned on for this kernel's compilation alone, and the test
against scipy holds the result.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import numba
import numpy as np
from numba.core.compiler_lock import global_compiler_lock

FLOOR_DB = -120.0

# BS.1770-4 gating: 400 ms blocks every 100 ms, -70 LUFS absolute and -10 LU relative gates.
LOUDNESS_HOP_S = 0.1
LOUDNESS_BLOCK_HOPS = 4
LOUDNESS_OFFSET_DB = -0.691
ABSOLUTE_GATE_MEAN_SQUARE = 10.0 ** ((-70.0 - LOUDNESS_OFFSET_DB) / 10.0)
RELATIVE_GATE = 10.0 ** (-10.0 / 10.0)
EINSUM_RUN = 8192  # numpy's buffer: see _hop_energy
SETTLED = 2.0**-300  # a filter state this small is set to zero: see _k_weighted_hop_energy
STATES = 8  # two biquads' two states, for each of two columns


@functools.cache
def k_weighting(rate: int) -> np.ndarray:
    """The BS.1770 pre-filter as two biquads (high shelf, then high-pass), derived for any rate
    with the RBJ cookbook formulas as pyloudnorm does, so the two agree at every rate."""
    w0 = 2.0 * math.pi * 1500.0 / rate
    a = 10.0 ** (4.0 / 40.0)
    alpha = math.sin(w0) / (2.0 * (1.0 / math.sqrt(2.0)))
    cos, root = math.cos(w0), 2.0 * math.sqrt(a) * alpha
    shelf = [
        a * ((a + 1) + (a - 1) * cos + root),
        -2 * a * ((a - 1) + (a + 1) * cos),
        a * ((a + 1) + (a - 1) * cos - root),
        (a + 1) - (a - 1) * cos + root,
        2 * ((a - 1) - (a + 1) * cos),
        (a + 1) - (a - 1) * cos - root,
    ]
    w0 = 2.0 * math.pi * 38.0 / rate
    alpha, cos = math.sin(w0) / (2.0 * 0.5), math.cos(w0)
    high_pass = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2, 1 + alpha, -2 * cos, 1 - alpha]
    sos = np.array([shelf, high_pass])
    return sos / sos[:, 3:4]


def integrated_loudness(x: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness of (samples, 1 or 2) float32 PCM; channel weights are 1.

    Only complete 400 ms blocks count, as the Recommendation says; pyloudnorm also counts a
    trailing partial block (at full-block length), so the two differ on clip lengths that are
    not a whole number of 100 ms hops, by up to ~0.9 LU on clips of a second or so.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    hop = round(LOUDNESS_HOP_S * rate)
    hops = x.shape[0] // hop
    if hops < LOUDNESS_BLOCK_HOPS:
        return FLOOR_DB
    n = hops * hop
    if x.shape[1] == 2:
        hop_energy = _hop_energy(x[:n], rate, hop).sum(axis=1)
    else:
        # The two halves of a mono clip make the pair; the second starts at least one hop early
        # so that the filter has settled (the 38 Hz high-pass decays in ~4 ms) when it counts.
        half = (hops + 2) // 2 * hop
        pair = np.empty((half, 2), np.float32)
        pair[:, 0], pair[:, 1] = x[:half, 0], x[n - half : n, 0]
        energy = _hop_energy(pair, rate, hop)
        hop_energy = np.concatenate((energy[:, 0], energy[2 * half // hop - hops :, 1]))
    return gated_loudness(hop_energy, hop)


def gated_loudness(hop_energy: np.ndarray, hop: int) -> float:
    """The gated loudness of K-weighted energies summed per hop of `hop` samples."""
    block_energy = np.convolve(hop_energy, np.ones(LOUDNESS_BLOCK_HOPS), mode="valid")
    blocks = block_energy / (LOUDNESS_BLOCK_HOPS * hop)
    blocks = blocks[blocks >= ABSOLUTE_GATE_MEAN_SQUARE]
    if blocks.size == 0:
        return FLOOR_DB
    blocks = blocks[blocks > RELATIVE_GATE * blocks.mean()]
    return LOUDNESS_OFFSET_DB + 10.0 * math.log10(blocks.mean())


def _hop_energy(pair: np.ndarray, rate: int, hop: int) -> np.ndarray:
    """Energy per hop of the K-weighted columns of `pair` ((samples, 2) float32), shape (hops, 2)."""
    energy = np.empty((pair.shape[0] // hop, 2))
    hops = energy.shape[0]
    # The scipy code this replaced took the einsums 65536 samples of hops at a time, and einsum
    # sums a chunk of one hop in runs of 8192 samples. Hops longer than that (rates above
    # 81.9 kHz) that were such a lone chunk (the last, when the chunks did not come out even;
    # every one, above 327.7 kHz) are summed the same way, so that no stored value moves.
    step = max(1, 65536 // hop)
    lone_from = 0 if step == 1 else hops - 1 if hops % step == 1 else hops
    run = EINSUM_RUN if hop > EINSUM_RUN else hop
    k_weighted_hop_energy(pair, k_weighting(rate), hop, lone_from, run, energy)
    return energy


@contextlib.contextmanager
def _slp_vectorizing() -> Iterator[None]:
    """numba's SLP setting on while the kernel compiles; numba reads it for each compilation,
    and its compiler lock keeps another thread's compilation from seeing it."""
    with global_compiler_lock:
        before = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        try:
            yield
        finally:
            numba.config.SLP_VECTORIZE = before


def _k_weighted_hop_energy(
    x: np.ndarray, sos: np.ndarray, hop: int, lone_from: int, lone_run: int, energy: np.ndarray
) -> None:
    """Both columns of `x` through the two biquads of `sos`, in float64 (float32 state drifts by
    up to 0.15 dB on low frequencies at 192 kHz), and each hop's sum of squares into `energy`
    ((len(x) // hop, 2)), summed sample after sample (hops from `lone_from` on in runs of
    `lone_run` samples, the runs' sums then added in order). The columns are independent chains in one
    loop, so each hides the other's latency."""
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    # The states go through this array between hops, where the small ones are settled (below);
    # held in scalars across hops, the settling's selects led LLVM to pair the lanes worse, and
    # every clip took 15-25% longer.
    state = np.zeros(STATES)
    hops = energy.shape[0]
    for h in range(hops):
        p00, p01, p10, p11, q00, q01, q10, q11 = state
        run = lone_run if h >= lone_from else hop
        total_p = total_q = 0.0
        for start in range(h * hop, (h + 1) * hop, run):
            sum_p = sum_q = 0.0
            for i in range(start, min(start + run, (h + 1) * hop)):
                xp, xq = np.float64(x[i, 0]), np.float64(x[i, 1])
                yp, yq = b00 * xp + p00, b00 * xq + q00
                p00, q00 = b01 * xp - a01 * yp + p01, b01 * xq - a01 * yq + q01
                p01, q01 = b02 * xp - a02 * yp, b02 * xq - a02 * yq
                wp, wq = b10 * yp + p10, b10 * yq + q10
                p10, q10 = b11 * yp - a11 * wp + p11, b11 * yq - a11 * wq + q11
                p11, q11 = b12 * yp - a12 * wp, b12 * yq - a12 * wq
                sum_p += wp * wp
                sum_q += wq * wq
            total_p += sum_p
            total_q += sum_q
        energy[h, 0], energy[h, 1] = total_p, total_q
        state[:] = p00, p01, p10, p11, q00, q01, q10, q11
        # In digital silence the states decay towards zero and reach the subnormal range, where
        # every operation on them takes the CPU a microcode assist: a 30 s clip that ends in
        # silence took 70-140 ms here instead of 4-7. A state below SETTLED can no longer move
        # a value that counts, so it is set to zero and silence stays exact zeros: the next
        # nonzero input sample (at least 2**-149 in float32) times a coefficient has a half ulp
        # of at least 2**-203, so adding the state to it rounds to the same value, bit for bit;
        # until that sample comes, every hop's energy is over 10**170 times below the gate.
        for k in range(STATES):
            if abs(state[k]) < SETTLED:
                state[k] = 0.0


# Compiled when the module is imported (from numba's cache after the first time, ~0.3 s), so a
# job's warm-up pays for it once, before the first unit, and forked workers inherit it.
with _slp_vectorizing():
    k_weighted_hop_energy = numba.njit(
        "void(float32[:, ::1], float64[:, ::1], int64, int64, int64, float64[:, ::1])", cache=True, nogil=True
    )(_k_weighted_hop_energy)
