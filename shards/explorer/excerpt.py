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
    # libsndfile gives every Ogg stream a random serial number: the same clip would give other
    # bytes at every publish. One stream per file needs no particular serial; a fixed one keeps
    # a version's files the same wherever and however often it is published.
    return with_stream_serial(out.getvalue(), 1)


def with_stream_serial(ogg: bytes, serial: int) -> bytes:
    """The Ogg pages of `ogg` with their stream serial number set to `serial` and each page's
    checksum recomputed (RFC 3533: the serial at byte 14 of a page, the CRC at byte 22)."""
    pages = bytearray(ogg)
    start = 0
    while start < len(pages):
        if pages[start : start + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {start}")
        segments = pages[start + 26]
        end = start + 27 + segments + sum(pages[start + 27 : start + 27 + segments])
        pages[start + 14 : start + 18] = serial.to_bytes(4, "little")
        pages[start + 22 : start + 26] = bytes(4)
        pages[start + 22 : start + 26] = _ogg_crc(pages[start:end]).to_bytes(4, "little")
        start = end
    return bytes(pages)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(page: bytes | bytearray) -> int:
    """Ogg's page checksum: CRC-32 with polynomial 0x04C11DB7, not reflected, starting at 0."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc
