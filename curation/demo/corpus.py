"""The demo corpus: a few dozen short music pieces synthesized procedurally (demo_synth.py)
and written in six formats with container tags, with the truth about each piece in
`demo_corpus.json`.

It is what `make demo` curates and what the tests curate, so nothing is downloaded and
everything a curation or labeling step could recover is known exactly: tags, genre, lead
instrument, tempo, key, loudness, digital-silence gaps, an exact duplicate, sample rate and
channels. The corner cases sit at fixed indices so that a corpus of 7 pieces already has
all of them: piece 0 (wav) has an exact copy in the last flac slot, piece 2 is mono,
piece 3 is 22.05 kHz and has a dot in its file name, piece 5 and every opus piece are
48 kHz, every fourth piece from 2 on has silence gaps, and the first of those in a lossless
format has one of 16 s or more.
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import dataclasses
import functools
import hashlib
import json
import os
import random
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
from scipy import ndimage

from curation.demo import synth as demo_synth
from curation.ffmpeg_binary import find_ffmpeg
from curation.core.errors import UserError

# Bump when a change alters the audio, names or tags, so that existing corpora regenerate.
GENERATOR_VERSION = 1
MANIFEST = "demo_corpus.json"
FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "m4a")
LOSSLESS = ("wav", "flac")
_CODEC_ARGS = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    # LAME's V2 VBR (about 190 kb/s): at CBR 192k LAME plays back 0.27 dB quieter.
    "mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "opus": ["-c:a", "libopus", "-b:a", "128k"],
    "m4a": ["-c:a", "aac", "-b:a", "192k"],
}

_DUPLICATE_SOURCE = 0
_MONO_INDEX = 2
_DOTTED_NAME_INDEX = 3
_RATE_OVERRIDES = {3: 22050, 5: 48000}
_LOUDNESS_LUFS = (-30.0, -12.0)
_GAP_S = (3.0, 20.0)
_LONG_GAP_S = 16.0  # a 30 s window over a gap this long is mostly silent
_GAP_MARGIN_S = 2.0  # music before and after every gap
# Below the promised -0.5 dBFS, so that rounding to 16 bits cannot cross it.
_CEILING = 10 ** (-0.6 / 20)
_LOUDNESS_TOLERANCE_LU = 0.05
_MASTER_PASSES = 6

_ARTISTS = ("Copper Harbor", "Léa Moreau", "The Velvet Static", "Northbound Owls",
            "Mira Okafor Trio", "Østfold Tape Club", "Saltmarsh", "Paper Satellites",
            "DJ Kestrel", "Hollow Pines", "Juniper & The Lamps", "Neon Cartographer")
_TITLE_WORDS = (
    ("Glass", "Quiet", "Golden", "Paper", "Midnight", "Amber", "Silver", "Slow", "Distant",
     "Velvet", "Winter", "Electric"),
    ("Lantern", "Harbor", "Orchard", "Signal", "Avenue", "Tide", "Meadow", "Engine",
     "Postcard", "Garden", "Comet", "Staircase"),
)
_ALBUMS = ("Sea Charts", "Room Tone", "Small Hours", "Field Notes", "Night Bus",
           "Paper Moons", "Low Light", "Open Windows")


@dataclasses.dataclass(frozen=True)
class DemoPiece:
    """One file of the demo corpus and the truth about it."""

    file_name: str
    format: str  # one of FORMATS, also the file's extension
    title: str
    artist: str
    album: str
    genre: str  # a key of demo_synth.STYLES
    instrument: str  # the lead timbre, a key of demo_synth.INSTRUMENTS
    tempo_bpm: float
    key: str  # "A minor"
    loudness_lufs: float  # integrated loudness (BS.1770, pyloudnorm) it was normalized to
    duration_s: float
    silence_gaps: list[tuple[float, float]]  # (start_s, length_s) of digital silence
    duplicate_of: str | None  # file_name of the piece whose audio this is a copy of
    sample_rate: int
    channels: int
    date: str
    comment: str

    @property
    def tags(self) -> dict[str, str]:
        """The container tags the file carries."""
        return {"title": self.title, "artist": self.artist, "album": self.album,
                "genre": self.genre, "date": self.date, "comment": self.comment}

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DemoPiece:
        return cls(**{**row, "silence_gaps": [tuple(gap) for gap in row["silence_gaps"]]})


class DemoCorpusError(UserError):
    """Corpus parameters or an output folder that cannot work; the message names the option."""


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What the corpus is a function of; stored in the manifest to recognize it again."""

    n_pieces: int
    seed: int
    min_duration_s: float
    max_duration_s: float
    sample_rate: int
    version: int = GENERATOR_VERSION

    def __post_init__(self) -> None:
        if self.n_pieces < 1:
            raise DemoCorpusError(f"n_pieces (--pieces) must be at least 1, got {self.n_pieces}")
        if not 10.0 <= self.min_duration_s <= self.max_duration_s:
            raise DemoCorpusError("durations must satisfy 10 <= min_duration_s (--min-duration) <= max_duration_s "
                                  "(--max-duration) (silence gaps need music on both sides), got "
                                  f"{self.min_duration_s}, {self.max_duration_s}")
        if self.sample_rate < 16000:
            raise DemoCorpusError(f"sample_rate must be at least 16000, got {self.sample_rate}")


# Planning: which piece is what ---------------------------------------------------------


def _duplicate_index(n_pieces: int) -> int | None:
    """The last flac slot copies piece 0 (a wav): the pair decodes to the same PCM from two
    lossless formats, and every format still appears."""
    slots = [i for i in range(1, n_pieces) if FORMATS[i % len(FORMATS)] == "flac"]
    return slots[-1] if slots else None


def _gap_indices(n_pieces: int) -> list[int]:
    return list(range(2, n_pieces, 4))


def _long_gap_index(n_pieces: int) -> int | None:
    """The first gap piece in a lossless format, so its silence can be checked exactly."""
    gaps = _gap_indices(n_pieces)
    lossless = [i for i in gaps if FORMATS[i % len(FORMATS)] in LOSSLESS]
    return (lossless or gaps or [None])[0]


def _silence_gaps(rng: np.random.Generator, duration_s: float,
                  long: bool) -> list[tuple[float, float]]:
    """One or two gaps, each inside its own equal span of the piece with music on both
    sides; starts and lengths are whole tenths of a second, whole samples at every rate."""
    fits_two = duration_s >= 2 * (_GAP_S[0] + 2 * _GAP_MARGIN_S)
    count = int(rng.integers(1, 3)) if fits_two and not long else 1
    span = duration_s / count
    room = span - 2 * _GAP_MARGIN_S  # the longest gap that fits in a span
    gaps = []
    for i in range(count):
        shortest = _LONG_GAP_S if long else _GAP_S[0]
        length = np.floor(10 * min(rng.uniform(shortest, _GAP_S[1]), room)) / 10
        # max(): the length rounded to tenths may exceed `room` by a rounding error (22.4 s pieces).
        start = np.floor(10 * (i * span + _GAP_MARGIN_S + rng.uniform(0, max(0.0, room - length)))) / 10
        gaps.append((float(start), float(length)))
    return gaps


def _plan(index: int, settings: _Settings) -> tuple[DemoPiece, np.random.Generator]:
    """Piece `index`'s attributes, and the generator that goes on to synthesize its audio
    (for the duplicate, its source's, so that the two get the same samples)."""
    if index == _duplicate_index(settings.n_pieces):
        source, rng = _plan(_DUPLICATE_SOURCE, settings)
        return _as_duplicate(source, index, settings.seed), rng
    rng = np.random.default_rng([settings.seed, index])
    genre = demo_synth.GENRES[index % len(demo_synth.GENRES)]
    style = demo_synth.STYLES[genre]
    fmt = FORMATS[index % len(FORMATS)]
    shortest, longest = settings.min_duration_s, settings.max_duration_s
    duration_s = float(np.clip(round(rng.uniform(shortest, longest), 1), shortest, longest))
    artist = _ARTISTS[rng.integers(len(_ARTISTS))]
    title = " ".join(words[rng.integers(len(words))] for words in _TITLE_WORDS)
    if index == _DOTTED_NAME_INDEX:
        title, file_name = f"{title} 2.0 (Clean)", f"{title} 2.0 (Clean).{fmt}"
    else:
        file_name = f"{index + 1:03d} - {artist} - {title}.{fmt}"
    gaps = []
    if index in _gap_indices(settings.n_pieces):
        gaps = _silence_gaps(rng, duration_s, long=index == _long_gap_index(settings.n_pieces))
    piece = DemoPiece(
        file_name=file_name,
        format=fmt,
        title=title,
        artist=artist,
        album=_ALBUMS[rng.integers(len(_ALBUMS))],
        genre=genre,
        instrument=style.leads[rng.integers(len(style.leads))],
        tempo_bpm=float(rng.integers(style.tempo_bpm[0], style.tempo_bpm[1] + 1)),
        key=demo_synth.KEYS[rng.integers(len(demo_synth.KEYS))],
        loudness_lufs=round(float(rng.uniform(*_LOUDNESS_LUFS)), 1),
        duration_s=duration_s,
        silence_gaps=gaps,
        duplicate_of=None,
        sample_rate=48000 if fmt == "opus" else _RATE_OVERRIDES.get(index, settings.sample_rate),
        channels=1 if index == _MONO_INDEX else 2,
        date=str(rng.integers(1995, 2025)),
        comment=_comment(settings.seed, index),
    )
    return piece, rng


def _comment(seed: int, index: int) -> str:
    return f"soundry demo corpus: synthesized, seed {seed}, piece {index}"


def _as_duplicate(source: DemoPiece, index: int, seed: int) -> DemoPiece:
    """The same audio re-released on a compilation: other tags and file, same samples."""
    title = f"{source.title} (Remastered)"
    return dataclasses.replace(
        source,
        file_name=f"{index + 1:03d} - {source.artist} - {title}.flac",
        format="flac",
        title=title,
        album=f"The Best of {source.artist}",
        date=str(int(source.date) + 3),
        comment=_comment(seed, index),
        duplicate_of=source.file_name,
    )


# Mastering: gaps, loudness, peaks ------------------------------------------------------


def _with_gaps(audio: np.ndarray, gaps: list[tuple[float, float]], sr: int) -> np.ndarray:
    """Digital silence over each gap, with 10 ms fades outside it so its edges do not click."""
    out, ramp = audio.copy(), np.linspace(1, 0, int(0.01 * sr), dtype=audio.dtype)[:, None]
    for start_s, length_s in gaps:
        start, end = round(start_s * sr), round((start_s + length_s) * sr)
        out[start - ramp.size : start] *= ramp
        out[start:end] = 0
        out[end : end + ramp.size] *= ramp[::-1]
    return out


def _limit(audio: np.ndarray, sr: int) -> np.ndarray:
    """Look-ahead peak limiter. Each sample's gain is the average, over ±10 ms, of the least
    gain any sample within ±10 ms of that needs, so no peak gets through the ceiling and the
    gain never moves faster than the window (no distortion from gain steps)."""
    width = 2 * int(0.01 * sr) + 1
    needed = np.minimum(1.0, _CEILING / np.maximum(np.abs(audio).max(axis=1), 1e-12))
    gain = ndimage.uniform_filter1d(ndimage.minimum_filter1d(needed, width), width)
    return audio * gain[:, None]


def _loudness(meter: pyloudnorm.Meter, audio: np.ndarray) -> float:
    # pyloudnorm filters one channel at a time: 2.5x faster with each channel contiguous.
    return meter.integrated_loudness(np.asfortranarray(audio))


def _master(audio: np.ndarray, target_lufs: float, sr: int) -> np.ndarray:
    """Scales to the target integrated loudness under the peak ceiling. Limiting lowers the
    loudness again, so scaling and limiting alternate until both hold."""
    meter = pyloudnorm.Meter(sr)
    audio = np.asfortranarray(audio, dtype=np.float64)
    loudness = _loudness(meter, audio)
    for _ in range(_MASTER_PASSES):
        audio = audio * 10 ** ((target_lufs - loudness) / 20)
        if np.abs(audio).max() <= _CEILING:
            return audio  # scaling alone moves loudness exactly
        audio = _limit(audio, sr)
        loudness = _loudness(meter, audio)
        if abs(loudness - target_lufs) <= _LOUDNESS_TOLERANCE_LU:
            return audio
    raise RuntimeError(f"could not reach {target_lufs} LUFS under the ceiling: {loudness:.2f}")


# Writing -------------------------------------------------------------------------------


def _encode(pcm: np.ndarray, piece: DemoPiece, path: Path, ffmpeg: str) -> None:
    """Encodes 16-bit PCM piped to ffmpeg, so that every format, lossless ones included,
    gets its tags through one code path and wav and flac hold exactly these samples."""
    tags = [arg for name, value in piece.tags.items() for arg in ("-metadata", f"{name}={value}")]
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(piece.sample_rate), "-ac", str(piece.channels), "-i", "pipe:0",
        *_CODEC_ARGS[piece.format], *tags,
        # No encoder version or random Ogg serial numbers in the files: same bytes every run.
        "-fflags", "+bitexact", "-flags:a", "+bitexact",
        str(path),
    ]
    result = subprocess.run(command, input=pcm.tobytes(), capture_output=True)
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace")
        raise RuntimeError(f"ffmpeg failed writing {path}: {error}")


def _build(index: int, settings: _Settings, out_dir: str, ffmpeg: str) -> DemoPiece:
    """Plans, synthesizes, masters and writes one piece; runs in a worker process."""
    piece, rng = _plan(index, settings)
    audio = demo_synth.render_piece(piece.genre, piece.instrument, piece.tempo_bpm, piece.key,
                                    piece.duration_s, piece.sample_rate, rng)
    audio = _with_gaps(audio, piece.silence_gaps, piece.sample_rate)
    if piece.channels == 1:
        audio = (audio[:, :1] + audio[:, 1:]) * 0.5
    mastered = _master(audio, piece.loudness_lufs, piece.sample_rate)
    pcm = np.round(mastered * 32767).astype("<i2")
    _encode(pcm, piece, Path(out_dir) / piece.file_name, ffmpeg)
    return piece


def _load_manifest(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def generate_demo_corpus(out_dir: str | os.PathLike, n_pieces: int = 36, seed: int = 0,
                         min_duration_s: float = 20.0, max_duration_s: float = 90.0,
                         sample_rate: int = 44100, ffmpeg: str | None = None,
                         workers: int = 1) -> list[DemoPiece]:
    """Writes the corpus into out_dir and its manifest last, and returns its pieces. When
    out_dir already holds a complete corpus made with the same parameters, returns that
    one's pieces without writing anything. `workers` > 1 builds pieces in parallel
    processes; the result is the same."""
    settings = _Settings(n_pieces, seed, float(min_duration_s), float(max_duration_s), sample_rate)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DemoCorpusError(f"{out} is a file; the demo corpus is written into a folder: choose another path")
    manifest = out / MANIFEST
    previous = _load_manifest(manifest)
    if previous is not None:
        pieces = [DemoPiece.from_row(row) for row in previous["pieces"]]
        if (previous["parameters"] == dataclasses.asdict(settings)
                and all((out / piece.file_name).exists() for piece in pieces)):
            return pieces
        # Drop the old corpus first: a crash from here on must not leave a manifest that
        # vouches for half-written files, nor old files curation would pick up.
        manifest.unlink()
        for piece in pieces:
            (out / piece.file_name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    build = functools.partial(_build, settings=settings, out_dir=str(out),
                              ffmpeg=find_ffmpeg(ffmpeg))
    if workers > 1:
        with concurrent.futures.ProcessPoolExecutor(min(workers, n_pieces)) as pool:
            pieces = list(pool.map(build, range(n_pieces)))
    else:
        pieces = [build(index) for index in range(n_pieces)]
    document = {"parameters": dataclasses.asdict(settings), "pieces": [p.to_row() for p in pieces]}
    temporary = manifest.with_name(MANIFEST + ".tmp")
    temporary.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, manifest)
    return pieces


# Rater captions ------------------------------------------------------------------------
# A MusicCaps-style caption file (ytid, caption, aspect_list) for the demo's rater
# vocabularies: each piece described from what is known about it, in phrasings a person
# might write, chosen by a generator seeded by the piece's file name. It lives beside the
# corpus folder, not in it: curation would reject a CSV as audio it cannot decode.

CAPTION_COLUMNS = ("ytid", "caption", "aspect_list")
_SOUNDS = {  # timbre -> (tag, as a lead, as chords)
    "piano": ("piano", "a piano", "piano chords"), "organ": ("organ", "an electric organ", "organ chords"),
    "pluck": ("synth pluck", "a plucked synth", "plucked chords"), "bell": ("bells", "a bell-like synth", "bell chords"),
    "pad": ("synth pad", "a warm synth pad", "synth pad chords"), "strings": ("strings", "a string section", "string chords"),
    "bass-synth": ("synth bass", "a buzzing synth bass", "synth bass stabs"), "bass": ("bass", "a round bass", "bass notes"),
}
_MOODS = {"major": ("bright", "cheerful", "uplifting", "warm"), "minor": ("melancholic", "moody", "wistful", "dark")}
_OPENERS = (
    "This is a {tempo} {genre} piece led by {lead}.",
    "{a_mood} {genre} track where {lead} carries the melody at a {tempo} tempo.",
    "{Lead} plays {a_mood} melody over a {tempo} {genre} arrangement.",
    "An instrumental {genre} tune with {lead} up front; the mood is {mood} and the pace is {tempo}.",
    "The music is {mood} {genre} at a {tempo} pace, with {lead} playing the main theme.",
)
_GROOVES = {
    "techno": ("A four-on-the-floor kick drives it, with a snare on the backbeat and offbeat hi-hats.",
               "The beat is a pounding kick on every quarter note under {bass} and short {comp}."),
    "rock": ("The drums keep a steady rock backbeat with eighth-note hi-hats while {bass} pumps eighths.",
             "A driving drum beat and {comp} push the song forward."),
    "jazz": ("The drummer swings a soft ride pattern while {bass} walks underneath {comp}.",
             "Brushed, swung drums and {bass} give it a relaxed jazz groove."),
    "lo-fi hip hop": ("Laid-back swung drums and {bass} sit under mellow {comp}.",
                      "The beat is lazy and swung, with a soft kick, a snare on two and four and {bass}."),
}
_NO_DRUMS = ("There are no drums, only {comp} and {bass} holding the harmony.",
             "Without any percussion, {comp} and {bass} fill out the harmony.")


def demo_caption(piece: DemoPiece) -> dict[str, str]:
    """A rater's caption of the piece (two or three sentences) and its aspect list."""
    rng = random.Random(hashlib.sha256(piece.file_name.encode()).digest())
    style = demo_synth.STYLES[piece.genre]
    lead_tag, lead, _ = _SOUNDS[piece.instrument]
    mode = piece.key.split()[1]
    mood = rng.choice(_MOODS[mode])
    tempo = "slow" if piece.tempo_bpm < 85 else "fast" if piece.tempo_bpm > 115 else "moderate"
    opener = rng.choice(_OPENERS)
    a_mood = f"{'An' if mood[0] in 'aeiou' else 'A'} {mood}"
    sentences = [opener.format(tempo=tempo, genre=piece.genre, lead=lead, Lead=lead[0].upper() + lead[1:], mood=mood,
                               a_mood=a_mood if opener.startswith("{a_mood}") else a_mood.lower())]
    grooves = _GROOVES.get(piece.genre, _NO_DRUMS) if style.drums else _NO_DRUMS
    sentences.append(rng.choice(grooves).format(comp=_SOUNDS[style.comp][2], bass=_SOUNDS[style.bass][1]))
    aspects = [piece.genre, lead_tag, f"{tempo} tempo", mood, f"{mode} key", "instrumental",
               "drums" if style.drums else "no drums"]
    quality = []  # what a listener hears of the recording itself
    if piece.channels == 1:
        quality.append(("The recording is in mono.", "mono"))
    if piece.sample_rate < 32000:
        quality.append(("The sound is dull and muffled, with no high end.", "low fidelity"))
    if piece.silence_gaps:
        quality.append(("The music stops for several seconds of complete silence before it resumes.", "silence"))
    if piece.loudness_lufs < -24:
        quality.append(("It is mixed very quietly, with a lot of headroom.", "quiet"))
    elif piece.loudness_lufs > -16:
        quality.append(("The mix is loud and dense.", "loud"))
    aspects += [tag for _, tag in quality]  # a rater tags all it hears but writes one or two things
    if quality:
        sentences.append(rng.choice(quality)[0])
    elif rng.random() < 0.5:
        sentences.append(f"It is in {piece.key}, at about {round(piece.tempo_bpm)} beats per minute.")
    ytid = base64.urlsafe_b64encode(hashlib.sha256(piece.file_name.encode()).digest()).decode()[:11]
    return {"ytid": ytid, "caption": " ".join(sentences), "aspect_list": str(aspects)}


def write_demo_captions(pieces: Sequence[DemoPiece], path: str | os.PathLike) -> Path:
    """Writes the pieces' rater captions as a CSV (atomically; the same pieces give the same bytes)."""
    return write_csv(path, CAPTION_COLUMNS, (demo_caption(piece) for piece in pieces))


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Rows as a CSV with a header, written to a temporary beside `path` and moved into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)
    return path
