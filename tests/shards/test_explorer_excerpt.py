"""The explorer's Opus excerpts: the same clip gives the same bytes, and the streams stay valid."""

from __future__ import annotations

import io

import av
import numpy as np
import soundfile

from shards.explorer.excerpt import opus_excerpt, with_stream_serial


def flac_clip(seconds: float = 2.0, rate: int = 44100) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32) * 0.3
    out = io.BytesIO()
    soundfile.write(out, audio, rate, format="FLAC")
    return out.getvalue()


def decoded_samples(ogg: bytes) -> int:
    with av.open(io.BytesIO(ogg)) as container:  # FFmpeg checks every page's checksum
        return sum(frame.samples for frame in container.decode(audio=0))


def test_the_same_clip_gives_the_same_excerpt_bytes_every_time():
    flac = flac_clip()
    first, again = opus_excerpt(flac, 1.5), opus_excerpt(flac, 1.5)
    assert first == again  # libsndfile alone picks a random Ogg serial number per stream
    assert decoded_samples(first) == 72000 and soundfile.read(io.BytesIO(first))[0].shape == (72000, 2)


def test_a_new_serial_number_keeps_the_pages_checksums_right():
    t = np.arange(48000) / 48000
    out = io.BytesIO()
    soundfile.write(out, np.sin(2 * np.pi * 440 * t).astype(np.float32) * 0.3, 48000, format="OGG", subtype="OPUS")
    written = out.getvalue()
    # The checksums recomputed with libsndfile's own serial are libsndfile's, byte for byte.
    assert with_stream_serial(written, int.from_bytes(written[14:18], "little")) == written
    assert decoded_samples(with_stream_serial(written, 1)) == decoded_samples(written) == 48000
