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

import numpy as np
import soundfile


def quantize_pcm16(pcm: np.ndarray) -> np.ndarray:
    scaled = pcm * np.float32(32768.0)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


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
