"""A folder of audio files as an evaluation set: its files in name order, decoded to an embedder's rate."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile
import soxr

from model.evaluation.embedding import AudioEmbedder, EmbeddedSet
from model.evaluation.errors import EvaluationError

# What libsndfile reads; other files in the folder (prompts, reports) are not audio and are passed over.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def audio_files(folder: str, option: str) -> list[Path]:
    """The folder's audio files, sorted by name; an error naming `option` when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise EvaluationError(f"{option} {folder}: no such folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise EvaluationError(f"{option} {folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    # A clip is named by its file name without suffix (prompts and pairs use it): two files may not share one.
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise EvaluationError(
                f"{option} {folder}: {by_stem[path.stem].name} and {path.name} share a name; keep one"
            )
        by_stem[path.stem] = path
    return files


def read_mono(source: Path | bytes, rate: int, name: str = "") -> np.ndarray:
    """A file, or an encoded file's bytes called `name` -> float32 mono at `rate`; an unreadable or
    empty one is an error naming it."""
    name = name or str(source)
    try:
        audio, source_rate = soundfile.read(
            io.BytesIO(source) if isinstance(source, bytes) else source, dtype="float32", always_2d=True
        )
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise EvaluationError(f"{name}: not readable audio ({str(error).splitlines()[0]})") from None
    if len(audio) == 0:
        raise EvaluationError(f"{name}: holds no samples")
    mono = audio.mean(axis=1)
    if source_rate != rate:
        mono = soxr.resample(mono, source_rate, rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def embed_folder(folder: str, option: str, embedder: AudioEmbedder, clips_per_batch: int) -> EmbeddedSet:
    """A folder's audio files embedded, named by file name without suffix (the key prompts use)."""
    files = audio_files(folder, option)
    vectors = embed_files(files, embedder, clips_per_batch)
    return EmbeddedSet(f"{option} {folder}", [p.stem for p in files], {}, vectors)


def embed_files(files: list[Path], embedder: AudioEmbedder, clips_per_batch: int) -> np.ndarray:
    """(len(files), D): decoded and embedded `clips_per_batch` at a time, so memory holds one batch of audio."""
    parts = [
        embedder.embed([read_mono(p, embedder.sample_rate) for p in batch]) for batch in _chunks(files, clips_per_batch)
    ]
    return np.concatenate(parts)


def _chunks(files: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]
