"""The floors `bench/curation.py` measures soundry against, over the same files with the same
number of processes: the ffmpeg CLI (a process per file), decoding alone with libsndfile, and
the in-process ceiling (soundry's own decoders, resampling and FLAC encoding, nothing else).
A file a floor cannot decode is left out of it and counted, never a crash."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

from curation.config import AudioFormat, Decoding, Encoding, Segmenting
from curation.decode import choose_backend, decode
from curation.encode import encode_flac, quantize_pcm16
from curation.ffmpeg_binary import find_ffmpeg
from curation.probe import NotAudio, SourceFacts, probe


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".json"))


@dataclasses.dataclass(frozen=True)
class FloorRun:
    """What one floor did: seconds it took, files and seconds of audio it decoded, files it could not."""

    seconds: float
    files: int
    audio_s: float
    refused: int

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds

    @property
    def x_realtime(self) -> float:
        return self.audio_s / self.seconds


@dataclasses.dataclass(frozen=True)
class Source:
    """A file as soundry sees it before decoding: its probed facts and the decoder soundry picks."""

    path: str
    facts: SourceFacts
    backend: str


def sources(files: list[Path]) -> tuple[list[Source], int]:
    """Probe every file (not timed), as soundry does, for the decoder soundry picks per codec.
    Files FFmpeg cannot read are left out of every floor; their count is returned."""
    found, not_audio = [], 0
    for path in files:
        try:
            facts = probe(str(path))
        except NotAudio:
            not_audio += 1
            continue
        found.append(Source(str(path), facts, choose_backend(facts, Decoding())))
    return found, not_audio


def ffmpeg_floor(items: list[Source], workers: int, scratch: Path) -> FloorRun:
    """The ffmpeg CLI alone decoding, resampling to 44.1 kHz stereo (soxr) and FLAC-encoding
    each file, one process per file; a file it fails on is counted, not fatal."""
    binary = find_ffmpeg()
    scratch.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, Source]) -> bool:
        index, source = item
        done = subprocess.run(
            [
                binary,
                "-nostdin",
                "-v",
                "fatal",
                "-y",
                "-i",
                source.path,
                "-ar",
                "44100",
                "-ac",
                "2",
                "-af",
                "aresample=resampler=soxr",
                "-c:a",
                "flac",
                str(scratch / f"{index}.flac"),
            ]
        )
        return done.returncode == 0

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # each thread waits on its own ffmpeg process
        ok = list(pool.map(one, enumerate(items)))
    seconds = time.perf_counter() - started
    audio_s = sum(source.facts.duration_s for source, done in zip(items, ok, strict=True) if done)
    return FloorRun(seconds, sum(ok), audio_s, ok.count(False))


def decode_only(items: list[Source]) -> tuple[int, float, int]:
    """Decoding alone with libsndfile, as float32: the short files' historic floor."""
    files, frames, refused = 0, 0, 0
    for source in items:
        try:
            pcm, rate = soundfile.read(source.path, dtype="float32")
        except (soundfile.LibsndfileError, RuntimeError):
            refused += 1
            continue
        files += 1
        frames += len(pcm) * 44100 / rate
    return files, frames / 44100, refused


def decode_resample_encode(items: list[Source]) -> tuple[int, float, int]:
    """What every stored clip needs at the least, with soundry's own decoders: the decoder
    soundry picks for the codec, streaming, remixed to stereo and resampled to 44.1 kHz (soxr
    HQ), cut into 30 s windows, each quantized and FLAC-encoded as the clip table stores it."""
    target = AudioFormat()
    window = round(Segmenting().window_s * target.sample_rate)
    compression = Encoding().flac_compression
    files, frames, refused = 0, 0, 0
    for source in items:
        blocks, held, done = [], 0, 0
        try:
            for block in decode(source.path, source.facts, source.backend, Decoding(), target):
                blocks.append(block)
                held += len(block)
                while held >= window:
                    joined = np.concatenate(blocks)
                    encode_flac(quantize_pcm16(joined[:window]), target.sample_rate, compression)
                    blocks, held, done = [joined[window:]], held - window, done + window
            if held:
                encode_flac(quantize_pcm16(np.concatenate(blocks)), target.sample_rate, compression)
        except Exception:  # whatever a decoder raises, the floor leaves the file out
            refused += 1
            continue
        files += 1
        frames += done + held
    return files, frames / target.sample_rate, refused


def in_process_floor(items: list[Source], workers: int, work=decode_only) -> FloorRun:
    """`work` over every file in-process, over `workers` processes that each take the next
    few files as they finish: the balance no plan of units can beat. (Fixed halves, as this
    floor took before, left one process idle for a third of the music corpus's run, which
    flattered every ratio against it.) Tasks of a few files keep the hand-out's own cost off
    short files."""
    per_task = max(1, len(items) // (workers * 64))
    tasks = [items[i : i + per_task] for i in range(0, len(items), per_task)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(work, [tasks[0]] * workers))  # start the processes outside the timing
        started = time.perf_counter()
        results = list(pool.map(work, tasks))
    seconds = time.perf_counter() - started
    return FloorRun(seconds, *(sum(r[i] for r in results) for i in range(3)))
