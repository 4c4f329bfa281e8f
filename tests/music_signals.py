"""Signals whose tempo, key and chords are known: click tracks and triad progressions."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import soundfile
from label_inputs import write_clip_parts

from curation.demo import synth
from labeling.music.harmony import PITCH_CLASSES, TRIADS

SR = 22050


def click_track(bpm: float, seconds: float, sr: int = SR, beats_per_bar: int = 4) -> np.ndarray:
    """A short decaying 1.5 kHz blip on every beat, accented on each bar's first."""
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    blip = np.sin(2 * np.pi * 1500 * np.arange(int(0.03 * sr)) / sr) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr))
    for beat, start in enumerate(np.arange(0, seconds, 60.0 / bpm)):
        i = int(start * sr)
        piece = blip[: len(out) - i] * (1.0 if beat % beats_per_bar == 0 else 0.6)
        out[i : i + len(piece)] += piece.astype(np.float32)
    return out


def _tone(midi: int, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(np.sin(2 * np.pi * hz * k * t) / k for k in (1, 2, 3)) * np.exp(-2.0 * t)


def chord_progression(tonic: str, chords: list[str], bpm: float, seconds: float, sr: int = SR) -> np.ndarray:
    """Triads ("A:min", "F:maj" ...) one per bar of four beats, struck on every beat, with a bass
    note on the root and a click track on top; cycles through `chords` for `seconds`."""
    beat_n = int(60.0 / bpm * sr)
    out = np.zeros(int(seconds * sr), dtype=np.float64)
    for beat in range(len(out) // beat_n):
        root, quality = chords[(beat // 4) % len(chords)].split(":")
        midi = 48 + PITCH_CLASSES.index(root)
        notes = [midi + 12 + i for i in TRIADS[quality]] + [midi]
        note = sum(_tone(m, beat_n, sr) for m in notes) / len(notes)
        out[beat * beat_n : (beat + 1) * beat_n] += note
    return (0.5 * out + click_track(bpm, seconds, sr)[: len(out)]).astype(np.float32)


def irregular_hits(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """Noise bursts at random, unevenly spaced times: a sound effect with no beat."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    for start in np.sort(rng.uniform(0, seconds - 0.3, 5)):
        i = int(start * sr)
        n = int(rng.uniform(0.05, 0.3) * sr)
        out[i : i + n] += (rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * sr))).astype(np.float32)
    return out


def drum_loop(bpm: float, seconds: float, sr: int = SR) -> np.ndarray:
    """The demo corpus's rock kit (kick, snare, hats; curation.demo.synth) and nothing else."""
    rng = np.random.default_rng(7)
    step_n = 60.0 / bpm / 4 * sr  # a sixteenth
    out = np.zeros(int(seconds * sr), dtype=np.float32)
    for name, pattern in synth.STYLES["rock"].drums:
        sound = synth.DRUMS[name][0](sr, rng).astype(np.float32)
        for step in range(int(len(out) / step_n)):
            if pattern[step % len(pattern)] != ".":
                i = int(step * step_n)
                piece = sound[: len(out) - i]
                out[i : i + len(piece)] += piece
    return out


# (title, signal, true bpm, true key): a clip table's worth of known facts, and the unknown cases.
def music_clips() -> list[tuple[str, np.ndarray, float | None, str | None]]:
    return [
        ("clicks", click_track(120.0, 6.0), 120.0, None),
        ("c-major", chord_progression("C", ["C:maj", "G:maj", "A:min", "F:maj"], 100.0, 10.0), 100.0, "C major"),
        ("a-minor", chord_progression("A", ["A:min", "D:min", "E:maj", "A:min"], 132.0, 8.0), 132.0, "A minor"),
        ("noise", np.random.default_rng(5).standard_normal(SR * 5).astype(np.float32) * 0.1, None, None),
        ("short", click_track(90.0, 2.0), None, None),
    ]


def write_music_clip_table(root: Path, parts: int = 2) -> str:
    """The music clips as a clip table (22.05 kHz stereo FLAC), two clips per row group."""
    rows = []
    for title, signal, _, _ in music_clips():
        buffer = io.BytesIO()
        soundfile.write(buffer, np.stack([signal, signal], axis=1), SR, format="FLAC", subtype="PCM_16")
        source = hashlib.sha256(f"music-{title}".encode()).hexdigest()
        rows.append(
            {
                "clip_id": f"{source[:20]}-{0:012d}",
                "source_id": source,
                "source_uri": f"/corpus/{title}.flac",
                "start_s": 0.0,
                "start_sample": 0,
                "duration_s": len(signal) / SR,
                "num_samples": len(signal),
                "sample_rate": SR,
                "channels": 2,
                "seconds_start": 0,
                "seconds_total": int(np.ceil(len(signal) / SR)),
                "title": title,
                "pcm_sha256": hashlib.sha256(signal.tobytes()).hexdigest(),
                "audio_flac": buffer.getvalue(),
            }
        )
    return write_clip_parts(root, rows, parts)
