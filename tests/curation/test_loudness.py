"""The compiled K-weighting pass gives, bit for bit, what scipy's sosfilt and an einsum per hop
gave before it, so stored loudness values do not depend on which of the two computed them."""

import platform
import re

import numba
import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from curation.loudness import (
    _hop_energy,
    _k_weighted_hop_energy,
    _slp_vectorizing,
    gated_loudness,
    integrated_loudness,
    k_weighting,
)


def _scipy_hop_energy(pair: np.ndarray, rate: int, hop: int) -> np.ndarray:
    """The previous implementation: the two columns as one complex signal through sosfilt, 65536
    samples of hops at a time, and each hop's energy by einsum over the strided real and
    imaginary parts (einsum sums a lone hop in runs of 8192 samples)."""
    sos, state = k_weighting(rate), np.zeros((2, 2), np.complex128)
    energy = np.empty((pair.shape[0] // hop, 2))
    step = max(1, 65536 // hop)
    for first in range(0, energy.shape[0], step):
        chunk = pair[first * hop : (first + step) * hop].view(np.complex64)[:, 0].astype(np.complex128)
        filtered, state = scipy.signal.sosfilt(sos, chunk, zi=state)
        parts = filtered.view(np.float64).reshape(-1, hop, 2)
        for c in (0, 1):
            energy[first : first + step, c] = np.einsum("ij,ij->i", parts[..., c], parts[..., c])
    return energy


# 37 hops: at 96 and 192 kHz the previous code's last chunk held a lone hop of over 8192 samples,
# at 384 kHz every chunk did.
@pytest.mark.parametrize("rate", [8000, 44100, 48000, 96000, 192000, 384000])
def test_compiled_pass_is_scipys_bit_for_bit(rate: int):
    rng = np.random.default_rng(rate)
    hop = rate // 10
    n = 37 * hop
    t = np.arange(n) / rate
    pair = np.stack(
        [rng.standard_normal(n) * 0.3, np.sin(2 * np.pi * 40.0 * t) * 0.9 + np.cumsum(rng.standard_normal(n)) * 1e-4],
        axis=1,
    ).astype(np.float32)
    assert np.array_equal(_hop_energy(pair, rate, hop), _scipy_hop_energy(pair, rate, hop))


@pytest.mark.parametrize("rate", [8000, 44100, 192000])
def test_digital_silence_settles_the_filter_and_moves_no_value(rate: int):
    """In digital silence the filter's state decays into the subnormal range, where each
    operation costs the CPU a microcode assist (20-35x slower clips); the kernel sets a state
    below 2**-300 to zero instead. Every hop's energy that is not some 10**170 below the
    absolute gate stays scipy's bit for bit, so does the loudness, even where the smallest
    float32 samples follow the silence, and the silent hops are exact zeros."""
    rng = np.random.default_rng(rate)
    hop = rate // 10

    def noise(seconds: float, scale: float = 0.3) -> np.ndarray:
        return rng.standard_normal((round(seconds * rate), 2)) * scale

    one_side = noise(4.0)
    one_side[:, 1] = 0.0  # one column silent while the other plays
    smallest = rng.integers(-3, 4, (rate, 2)) * 2.0**-149  # float32's smallest steps, after silence
    pair = np.concatenate(
        [noise(2.0), np.zeros((4 * rate, 2)), noise(1.0), one_side, np.zeros((4 * rate, 2)), smallest, noise(0.5)]
    ).astype(np.float32)
    pair = pair[: pair.shape[0] // hop * hop]
    assert (pair[-rate // 2 - rate : -rate // 2] != 0).any()  # the subnormal samples survived float32

    compiled, reference = _hop_energy(pair, rate, hop), _scipy_hop_energy(pair, rate, hop)
    counted = reference > 1e-100
    assert np.array_equal(compiled[counted], reference[counted])
    assert (compiled[~counted] < 1e-100).all()
    assert ((compiled == 0) & (reference > 0)).any(axis=0).all()  # settled in each column
    assert gated_loudness(compiled.sum(axis=1), hop) == gated_loudness(reference.sum(axis=1), hop)


@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_is_pyloudnorms_on_whole_blocks(channels: int):
    # A whole number of 100 ms hops, where pyloudnorm's blocks and BS.1770's agree.
    rate = 48000
    rng = np.random.default_rng(7)
    n = 40 * 4800
    t = np.arange(n) / rate
    stereo = np.stack([0.1 * np.sin(2 * np.pi * 997.0 * t), 0.05 * rng.standard_normal(n)], axis=1).astype(np.float32)
    x = stereo[:, :channels]
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert integrated_loudness(x, rate) == pytest.approx(reference, abs=1e-6)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="reads x86-64 instructions")
def test_the_two_channels_run_in_one_vector_instruction_each():
    """The kernel is compiled with LLVM's SLP vectorizer, which numba leaves off: the two
    channels' multiplies become packed two-lane ones (mulpd), a third less time per clip. The
    setting is numba's, for every compilation, so it is put back afterwards."""
    signature = "void(float32[:, ::1], float64[:, ::1], int64, int64, int64, float64[:, ::1])"

    def packed_multiplies(compiled) -> int:
        return len(re.findall(r"\bv?mulpd\b", next(iter(compiled.inspect_asm().values()))))

    before = numba.config.SLP_VECTORIZE
    with _slp_vectorizing():
        vectorized = numba.njit(signature, nogil=True)(_k_weighted_hop_energy)
    assert numba.config.SLP_VECTORIZE == before
    assert packed_multiplies(vectorized) >= 10
    if before == 0:  # numba's default (NUMBA_SLP_VECTORIZE unset): outside, the kernel stays scalar
        assert packed_multiplies(numba.njit(signature, nogil=True)(_k_weighted_hop_energy)) == 0
