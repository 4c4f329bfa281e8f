"""Quantize clips to 16-bit PCM and encode them as FLAC in memory.

The hash that finds exact duplicates is taken over the same 16-bit samples the FLAC
holds, so "same PCM" means the same stored audio.

Quantizing scales by 32768, the inverse of how libsndfile and FFmpeg read 16-bit PCM as
float (sample / 32768): a 16-bit source at the training format is stored bit for bit, and
a reader that decodes the FLAC to float gets back exactly the floats that were measured.
(libsndfile's own float writer scales by 32767, which moves every sample above half scale
by one step.)
"""

from __future__ import annotations

import hashlib
import io

import numba
import numpy as np
import soundfile


def quantize_pcm16(pcm: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 PCM as int16: times 32768, rounded half to even, clipped to
    the 16-bit range. No NaN comes here: a clip holding one is rejected before it is stored."""
    x = np.ascontiguousarray(pcm, dtype=np.float32)
    pcm16 = np.empty(x.shape, np.int16)
    _quantize(x.reshape(-1), pcm16.reshape(-1))
    return pcm16


# One compiled pass instead of numpy's four (scale, round, clip, convert, each over the whole
# clip): 0.5 against 2.9 ms for 30 s of stereo, the same values (a test holds the two together).
@numba.njit("void(float32[::1], int16[::1])", cache=True, nogil=True)
def _quantize(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        scaled = np.rint(x[i] * np.float32(32768.0))
        out[i] = np.int16(min(max(scaled, np.float32(-32768.0)), np.float32(32767.0)))


def pcm_sha256(pcm16: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pcm16, dtype="<i2").data).hexdigest()


def encode_flac(pcm16: np.ndarray, sample_rate: int, compression: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm16, sample_rate, format="FLAC", subtype="PCM_16", compression_level=compression)
    return buffer.getvalue()


def decode_flac(data: bytes) -> tuple[np.ndarray, int]:
    """(frames, channels) int16 and the sample rate: what a reader of the clip table gets."""
    pcm, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    return pcm, rate
