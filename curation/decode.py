"""Decode a source into float32 blocks at the training rate and channel count, streaming.

Three backends behind one function each (`soundfile`, `pyav`, `ffmpeg`), chosen per file
from the probed codec so the choice never depends on the runner or the machine: the same
file always takes the same path and gives the same samples. Memory is one block, whatever
the file's length.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import av
import ffmpeg
import numpy as np
import soundfile
import soxr

from curation.config import AudioFormat, Decoding
from curation.ffmpeg_binary import find_ffmpeg
from curation.probe import SourceFacts


class DecodeError(Exception):
    """The decoder failed on the file's content (corrupt or truncated data)."""


Blocks = Iterator[np.ndarray]  # each (frames, channels), float32
Channels = list[np.ndarray]  # one codec frame: a float32 array of its samples per channel


def choose_backend(facts: SourceFacts, config: Decoding) -> str:
    if config.backend != "auto":
        return config.backend
    return "soundfile" if facts.soundfile_can_decode else "pyav"


def decode(path: str, facts: SourceFacts, backend: str, config: Decoding, target: AudioFormat) -> Blocks:
    """Blocks of the whole source at `target` rate and channels."""
    if backend == "ffmpeg":
        # ffmpeg resamples (soxr) and remixes itself, as its CLI users expect.
        yield from _ffmpeg_blocks(path, config, target)
        return
    source_blocks = _SOURCE_DECODERS[backend](path, facts, config.block_frames)
    yield from _conform(source_blocks, facts.sample_rate, target)


def _soundfile_blocks(path: str, facts: SourceFacts, block_frames: int) -> Blocks:
    try:
        with soundfile.SoundFile(path) as f:
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise DecodeError(f"libsndfile: {error}") from error


def _pyav_blocks(path: str, facts: SourceFacts, block_frames: int) -> Blocks:
    remaining = facts.exact_frames if facts.exact_frames is not None else -1
    # A codec frame is ~1,000 samples: gathered into blocks of about block_frames, the steps
    # after decoding (remix, soxr, segmenting) run once a block instead of once a frame, which
    # matters most under Beam's threads, where that per-frame Python holds the GIL. soxr gives
    # the same samples however its input is cut, so the clips are the same.
    held: list[Channels] = []
    held_frames = 0
    try:
        with av.open(path, metadata_errors="ignore") as container:
            for channels in _float_frames(container):
                if remaining >= 0:
                    if remaining < len(channels[0]):
                        # AAC and similar return encoder padding past the stated length.
                        channels = [samples[:remaining] for samples in channels]
                    remaining -= len(channels[0])
                if len(channels[0]):
                    if held and len(held[0]) != len(channels):
                        yield _joined(held)
                        held, held_frames = [], 0
                    held.append(channels)
                    held_frames += len(channels[0])
                    if held_frames >= block_frames:
                        yield _joined(held)
                        held, held_frames = [], 0
                if remaining == 0:
                    break
    except av.error.FFmpegError as error:
        if held:  # the samples before a failure are passed on, as frame by frame
            yield _joined(held)
        raise DecodeError(f"FFmpeg: {error}") from error
    if held:
        yield _joined(held)


def _float_frames(container: av.container.InputContainer) -> Iterator[Channels]:
    """Each decoded frame's channels at the source rate, in the frame's own layout, not the
    probe's (a stream may change it midway). Float frames, which FFmpeg's decoders for opus,
    aac, vorbis and mp3 give, are read in place from the frame's planes; other sample formats
    go through the converter first.

    Views of the planes, not `to_ndarray()`: a frame is a few hundred samples, and numpy's
    per-frame set-up (to_ndarray, a transpose, a stack) cost more CPU than decoding an Opus
    frame, all of it holding the GIL. Under Beam's worker threads that turned decoding, which
    runs without the GIL, into one thread at a time. A view keeps its frame alive until the
    block is joined, so the decoder never writes over it."""
    converter = None
    for frame in container.decode(audio=0):
        if frame.format.name == "fltp":
            yield [np.frombuffer(plane, np.float32, frame.samples) for plane in frame.planes]
        elif frame.format.name == "flt":
            yield _packed_channels(frame)
        else:
            converter = converter or av.AudioResampler(format="flt")
            for converted in converter.resample(frame):
                yield _packed_channels(converted)


def _packed_channels(frame: av.AudioFrame) -> Channels:
    count = frame.layout.nb_channels
    packed = np.frombuffer(frame.planes[0], np.float32, frame.samples * count).reshape(-1, count)
    return [packed[:, channel] for channel in range(count)]


def _joined(frames: list[Channels]) -> np.ndarray:
    """(samples, channels) float32, C-contiguous, of frames that share a channel count."""
    return np.stack([np.concatenate(samples) for samples in zip(*frames, strict=True)], axis=1)


def _ffmpeg_blocks(path: str, config: Decoding, target: AudioFormat) -> Blocks:
    binary = find_ffmpeg(config.ffmpeg)
    stream = (
        ffmpeg.input(path)
        .output(
            "pipe:",
            format="f32le",
            acodec="pcm_f32le",
            ac=target.channels,
            ar=target.sample_rate,
            af="aresample=resampler=soxr",
        )
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    )
    process = subprocess.Popen(stream.compile(cmd=binary), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bytes_per_block = config.block_frames * target.channels * 4
    try:
        pending = b""
        while chunk := process.stdout.read(bytes_per_block):
            pending += chunk
            usable = len(pending) - len(pending) % (target.channels * 4)
            if usable:
                yield np.frombuffer(pending[:usable], dtype="<f4").reshape(-1, target.channels)
                pending = pending[usable:]
        error_text = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise DecodeError(f"ffmpeg exited with {process.returncode}: {error_text[-300:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


_SOURCE_DECODERS: dict[str, Callable[[str, SourceFacts, int], Blocks]] = {
    "soundfile": _soundfile_blocks,
    "pyav": _pyav_blocks,
}


def _conform(blocks: Blocks, rate: int, target: AudioFormat) -> Blocks:
    """Remix to the target channels and resample to the target rate.

    A source that arrives in one block (a short file) is resampled in one call, which gives
    the samples streaming gives without the stream's set-up and flush, and on the fewer
    channels: a mono source is duplicated after soxr, not before (soxr resamples each
    channel alone, so the samples are the same). Streams remix first: a stream may change
    its layout midway, and the resampler's channels are fixed.
    """
    if rate == target.sample_rate:
        for block in blocks:
            yield remix(block, target.channels)
        return
    resampler = None
    for block, last in _with_last(blocks):
        if resampler is None and last:
            fewer = remix(block, min(block.shape[1], target.channels))
            yield remix(soxr.resample(fewer, rate, target.sample_rate, quality="HQ"), target.channels)
            return
        if resampler is None:
            resampler = soxr.ResampleStream(rate, target.sample_rate, target.channels, dtype="float32", quality="HQ")
        out = resampler.resample_chunk(remix(block, target.channels))
        if len(out):
            yield out
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros((0, target.channels), dtype=np.float32), last=True)
        if len(tail):
            yield tail


def _with_last(blocks: Blocks) -> Iterator[tuple[np.ndarray, bool]]:
    """Each block with whether it is the last. When the decoder fails while looking ahead,
    the block in hand is passed on first, so the samples before a failure are the same as
    without looking ahead."""
    held = next(blocks, None)
    while held is not None:
        try:
            following = next(blocks, None)
        except Exception:
            yield held, False
            raise
        yield held, following is None
        held = following


# ITU-R BS.775 downmix weights for 5.1 (FL FR FC LFE BL BR); the LFE is left out as
# broadcast downmixes do. Scaled so a full-scale signal in every channel cannot clip.
_CENTER = _SURROUND = 0.7071
_DOWNMIX_51 = np.array(
    [[1.0, 0.0], [0.0, 1.0], [_CENTER, _CENTER], [0.0, 0.0], [_SURROUND, 0.0], [0.0, _SURROUND]],
    dtype=np.float32,
) / (1.0 + _CENTER + _SURROUND)


def remix(block: np.ndarray, channels: int) -> np.ndarray:
    """(frames, any channels) -> (frames, `channels`), float32, C-contiguous."""
    have = block.shape[1]
    if have == channels:
        return np.ascontiguousarray(block, dtype=np.float32)
    if channels == 1:
        if have == 2:
            return ((block[:, 0] + block[:, 1]) * 0.5)[:, None]
        return block.mean(axis=1, dtype=np.float32)[:, None]
    if have == 1:
        return np.repeat(block, 2, axis=1)
    if have == 6:
        return np.ascontiguousarray(block @ _DOWNMIX_51)
    # Other layouts: alternate channels are left/right in every common layout.
    left = block[:, 0::2].mean(axis=1, dtype=np.float32)
    right = block[:, 1::2].mean(axis=1, dtype=np.float32)
    return np.stack([left, right], axis=1)
