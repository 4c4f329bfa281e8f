"""The explorer's audio: a short excerpt of a clip as Ogg Opus (about 46 kbit/s stereo at 48 kHz),
small enough that hundreds of players stay light, and played natively by current browsers."""

from __future__ import annotations

import io

import numpy as np
import soundfile
import soxr

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Opus encodes; others are resampled to 48 kHz
# libsndfile's Opus quality knob: 0.92 gives about 46 kbit/s for stereo music (measured).
COMPRESSION_LEVEL = 0.92


def opus_excerpt(flac: bytes, seconds: float) -> bytes:
    """The clip's first `seconds` as Ogg Opus bytes."""
    with soundfile.SoundFile(io.BytesIO(flac)) as source:
        rate = source.samplerate
        audio = source.read(min(source.frames, int(seconds * rate)), dtype="float32", always_2d=True)
    if rate not in OPUS_RATES:
        audio = soxr.resample(audio, rate, 48000).astype(np.float32)
        rate = 48000
    out = io.BytesIO()
    soundfile.write(out, audio, rate, format="OGG", subtype="OPUS", compression_level=COMPRESSION_LEVEL)
    return out.getvalue()
