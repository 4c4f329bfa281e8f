"""Decoding is sample-exact on every path: bursts placed at known samples come out at
the same samples after encoding, decoding and resampling, however far into the file."""

from __future__ import annotations

import av
import numpy as np
import pytest
import soundfile
import soxr
from audio_files import encode, music_like, write_audio

from curation.config import AudioFormat, Decoding
from curation.decode import DecodeError, _conform, choose_backend, decode, remix
from curation.probe import NotAudio, probe

RATE = 44100
BURSTS_S = [1.0, 17.3, 31.7, 44.05]


def bursty(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.05 * np.sin(2 * np.pi * 220 * t)
    n = int(0.004 * rate)
    burst = np.sin(2 * np.pi * 3000 * np.arange(n) / rate) * np.hanning(n)
    for at in BURSTS_S:
        i = int(at * rate)
        signal[i : i + n] += 0.8 * burst
    return np.stack([signal, signal * 0.9], axis=1).astype(np.float32)


def burst_times(pcm: np.ndarray, rate: int) -> list[float]:
    envelope = np.abs(pcm[:, 0] - np.convolve(pcm[:, 0], np.ones(64) / 64, mode="same"))
    times = []
    for at in BURSTS_S:
        lo, hi = int((at - 0.2) * rate), int((at + 0.2) * rate)
        times.append((lo + int(np.argmax(envelope[lo:hi]))) / rate)
    return times


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bursts")
    wav = write_audio(folder / "src.wav", bursty(46, RATE), RATE)
    return {
        "wav": wav,
        "flac": write_audio(folder / "src.flac", bursty(46, RATE), RATE),
        "wav48k": write_audio(folder / "src48.wav", bursty(46, 48000), 48000),
        "mp3": encode(wav, folder / "src.mp3", "-b:a", "192k"),
        "ogg": encode(wav, folder / "src.ogg", "-c:a", "libvorbis"),
        "opus": encode(wav, folder / "src.opus", "-c:a", "libopus", "-b:a", "128k"),
        "m4a": encode(wav, folder / "src.m4a", "-c:a", "aac", "-b:a", "192k"),
    }


@pytest.mark.parametrize("backend", ["auto", "ffmpeg", "pyav"])
@pytest.mark.parametrize("kind", ["wav", "flac", "wav48k", "mp3", "ogg", "opus", "m4a"])
def test_no_drift_on_any_codec_or_backend(sources, kind, backend):
    path = str(sources[kind])
    facts = probe(path)
    config = Decoding(backend=backend, block_frames=4096)
    pcm = np.concatenate(list(decode(path, facts, choose_backend(facts, config), config, AudioFormat())))
    assert pcm.dtype == np.float32 and pcm.shape[1] == 2
    # Same length as the source (46 s), to within one codec frame of padding; exactly, where
    # the container states its length (AAC's encoder padding is cut there).
    assert abs(len(pcm) - 46 * RATE) <= (0 if kind in ("wav", "flac") or facts.exact_frames is not None else 1024)
    for found, start in zip(burst_times(pcm, RATE), BURSTS_S, strict=True):
        expected = start + 0.002  # the envelope peaks mid-burst
        assert abs(found - expected) < 0.0005, f"{kind}/{backend}: burst at {found:.4f}s, expected {expected}"


def test_auto_routes_by_codec(sources):
    routes = {kind: choose_backend(probe(str(p)), Decoding()) for kind, p in sources.items()}
    assert routes == {
        "wav": "soundfile",
        "flac": "soundfile",
        "wav48k": "soundfile",
        "mp3": "soundfile",
        "ogg": "soundfile",
        "opus": "pyav",
        "m4a": "pyav",
    }


def test_probe_reads_facts(sources):
    facts = probe(str(sources["m4a"]))
    assert (facts.codec, facts.sample_rate, facts.channels) == ("aac", RATE, 2)
    assert facts.exact_frames == 46 * RATE
    assert abs(facts.duration_s - 46) < 0.01


def test_probe_rejects_non_audio(tmp_path):
    text = tmp_path / "x.wav"
    text.write_text("RIFF but not really")
    with pytest.raises(NotAudio):
        probe(str(text))


@pytest.mark.parametrize("have,want", [(1, 2), (2, 1), (2, 2), (6, 2), (4, 2), (3, 1)])
def test_remix_shapes_and_levels(have, want):
    block = np.full((100, have), 0.5, np.float32)
    out = remix(block, want)
    assert out.shape == (100, want) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.all(np.abs(out) <= 0.5 + 1e-6)


def _streamed(pcm: np.ndarray, rate: int, target: AudioFormat, block: int) -> np.ndarray:
    """How every source was conformed before short ones took one call: remixed to the target,
    then resampled as a stream fed `block` frames at a time and flushed."""
    stream = soxr.ResampleStream(rate, target.sample_rate, target.channels, dtype="float32", quality="HQ")
    mixed = remix(pcm, target.channels)
    parts = [stream.resample_chunk(mixed[i : i + block]) for i in range(0, len(mixed), block)]
    parts.append(stream.resample_chunk(np.zeros((0, target.channels), np.float32), last=True))
    return np.concatenate(parts)


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000, 192000])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("seconds", [0.3, 1.7])
def test_one_block_sources_are_resampled_as_a_stream_would(tmp_path, rate, channels, seconds):
    """A short file is resampled in one call (mono before it is duplicated): the samples
    are those of the stream, bit for bit, and so are a long file's blocks."""
    rng = np.random.default_rng(rate + channels)
    pcm = (rng.standard_normal((round(seconds * rate), channels)) * 0.2).astype(np.float32)
    path = str(write_audio(tmp_path / "src.wav", pcm, rate, subtype="FLOAT"))
    facts, target = probe(path), AudioFormat()
    whole = list(decode(path, facts, "soundfile", Decoding(block_frames=2**20), target))
    assert len(whole) == 1
    assert np.array_equal(whole[0], _streamed(pcm, rate, target, len(pcm)))
    blocks = np.concatenate(list(decode(path, facts, "soundfile", Decoding(block_frames=4096), target)))
    assert np.array_equal(blocks, _streamed(pcm, rate, target, 4096))


def test_samples_before_a_decoder_failure_come_out_as_when_streaming():
    """Looking one block ahead must not hold back what was decoded before a failure."""

    def failing(blocks):
        yield from blocks
        raise DecodeError("truncated")

    rng = np.random.default_rng(0)
    first = (rng.standard_normal((48000, 2)) * 0.2).astype(np.float32)
    target = AudioFormat()
    seen = []
    with pytest.raises(DecodeError):
        for block in _conform(failing([first]), 48000, target):
            seen.append(block)
    stream = soxr.ResampleStream(48000, RATE, 2, dtype="float32", quality="HQ")
    assert len(seen) == 1 and np.array_equal(seen[0], stream.resample_chunk(first))


@pytest.mark.parametrize("kind", ["opus", "m4a"])
def test_pyav_frames_come_in_blocks_with_the_samples_frame_by_frame_gives(sources, kind):
    """PyAV decodes a codec frame (~1,000 samples) at a time; the frames are gathered into
    blocks of block_frames, so what follows runs per block, and the samples are the same as
    with blocks of about one frame (soxr resamples the same however its input is cut)."""
    path = str(sources[kind])
    facts = probe(path)
    blocks = list(decode(path, facts, "pyav", Decoding(block_frames=65536), AudioFormat()))
    framewise = np.concatenate(list(decode(path, facts, "pyav", Decoding(block_frames=1024), AudioFormat())))
    # 46 s: about 2 million samples, 31 blocks of 65,536 source frames (after resampling, a
    # stream's chunk comes out a little shorter or longer), never 2,000 codec frames.
    assert 25 <= len(blocks) <= 40
    assert np.array_equal(np.concatenate(blocks), framewise)


def test_float_frames_are_taken_without_a_converter(sources, monkeypatch):
    """FFmpeg's opus and aac decoders give float frames: they are read as they are, with no
    converter call per frame (a converter here fails the test)."""

    def no_converter(*args, **kwargs):
        raise AssertionError("a converter was built for float frames")

    monkeypatch.setattr(av, "AudioResampler", no_converter)
    for kind in ("opus", "m4a"):
        path = str(sources[kind])
        pcm = np.concatenate(list(decode(path, probe(path), "pyav", Decoding(), AudioFormat())))
        assert abs(len(pcm) - 46 * RATE) <= 1024


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("codec,subtype", [("pcm_s16le", "PCM_16"), ("pcm_f32le", "FLOAT")])
def test_packed_frames_read_as_libsndfile_reads_the_same_samples(tmp_path, codec, subtype, channels):
    """PCM in Matroska gives packed frames (16-bit ones through FFmpeg's converter, float ones
    as they are), read in place from the frame: each channel where it belongs, bit for bit
    what libsndfile reads from a WAV of the same samples (x / 32768 for 16 bits)."""
    pcm = music_like(2.0, channels=channels)
    if channels == 2:
        pcm[:, 1] *= -0.5  # channels that differ, so a swapped or repeated channel shows
    wav = write_audio(tmp_path / "src.wav", pcm, RATE, subtype=subtype)
    path = str(encode(wav, tmp_path / "src.mkv", "-c:a", codec))
    decoded = np.concatenate(list(decode(path, probe(path), "pyav", Decoding(), AudioFormat())))
    expected, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)
    assert np.array_equal(decoded, np.repeat(expected, 2, axis=1) if channels == 1 else expected)


@pytest.mark.parametrize("container", ["ogg", "caf"])
def test_flac_where_libsndfile_refuses_it_goes_to_pyav(tmp_path, container):
    """FLAC in Ogg (found in game data packages) and in CAF: libsndfile refuses to open
    them, FFmpeg decodes them; they used to be decode_error rejects."""
    source = write_audio(tmp_path / "src.wav", music_like(2.0), RATE)
    path = str(encode(source, tmp_path / f"x.{container}", "-c:a", "flac"))
    facts = probe(path)
    assert (facts.format, facts.codec) == (container, "flac")
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.read(path)
    backend = choose_backend(facts, Decoding())
    assert backend == "pyav"
    pcm = np.concatenate(list(decode(path, facts, backend, Decoding(), AudioFormat())))
    assert abs(len(pcm) - 2 * RATE) <= 1024
