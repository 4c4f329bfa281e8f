"""Musical facts: accuracy on the demo corpus's music and analysis speed against the decode floor.

Pieces are rendered by the demo corpus's own arranger (curation/demo/synth.py), which knows
each piece's tempo and key; each is FLAC-encoded at 44.1 kHz stereo as curation stores clips.
In the same run, one process (one core):
1. the floor: decoding each clip's FLAC and resampling it to the analysis rate, as
   `soundry analyze` does before it analyses (labeling.music.unit.decode_mono);
2. tempo + key (chords off), and the full analysis with chords, on the same decoded audio
   (best of two, in turns): x realtime and the ratio of their time to the floor's. Target: tempo + key >= 100x realtime.
3. accuracy of the full analysis against the pieces' known tempo and key: tempo Accuracy1/2,
   the MIREX key weighted score and exact-key share (labeling.music.scoring). Targets:
   Accuracy2 >= 0.95, Accuracy1 >= 0.8, key weighted >= 0.8. A style with no audible pulse
   (synth.Style.pulse: ambient) has true tempo 0: unknown is right there, and the report counts
   those pieces apart (tempo_no_pulse, tempo_no_pulse_unknown).
librosa's first call compiles its numba kernels; that warm-up is timed and printed apart.

    .venv/bin/python bench/music.py [--pieces 28] [--seconds 30] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

# Run as a script, this file's folder is first on sys.path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parents[1])
from curation.demo import synth  # noqa: E402
from labeling.music.analysis import analyze  # noqa: E402
from labeling.music.config import AnalysisSettings  # noqa: E402
from labeling.music.scoring import NO_PULSE, accuracy_report  # noqa: E402
from labeling.music.unit import decode_mono  # noqa: E402

RATE = 44100


def demo_pieces(count: int, seconds: float) -> list[tuple[str, float, str, bytes]]:
    """(genre, true bpm, true key, FLAC bytes): the demo corpus's styles in turn, seeded by index."""
    pieces = []
    genres = list(synth.STYLES)
    for index in range(count):
        rng = np.random.default_rng(1000 + index)
        genre = genres[index % len(genres)]
        style = synth.STYLES[genre]
        bpm = float(rng.integers(style.tempo_bpm[0], style.tempo_bpm[1] + 1))
        key = synth.KEYS[rng.integers(len(synth.KEYS))]
        audio = synth.render_piece(genre, style.leads[index % len(style.leads)], bpm, key, seconds, RATE, rng)
        audio = 0.5 * audio / max(float(np.abs(audio).max()), 1e-9)
        buffer = io.BytesIO()
        soundfile.write(buffer, audio, RATE, format="FLAC", subtype="PCM_16")
        pieces.append((genre, bpm, key, buffer.getvalue()))
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=28)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    full = AnalysisSettings()
    tempo_key = AnalysisSettings(chords=False)
    pieces = demo_pieces(args.pieces, args.seconds)
    started = time.perf_counter()
    analyze(decode_mono(pieces[0][3], full.sample_rate), full)
    warm_up_s = time.perf_counter() - started
    times = {"decode": 0.0, "tempo_key": 0.0, "full": 0.0}
    pairs, per_genre = [], {}
    for genre, bpm, key, flac in pieces:
        started = time.perf_counter()
        mono = decode_mono(flac, full.sample_rate)
        times["decode"] += time.perf_counter() - started
        best = {"tempo_key": float("inf"), "full": float("inf")}
        for _ in range(2):  # best of two, in turns, so that both see the same machine
            for name, settings in (("tempo_key", tempo_key), ("full", full)):
                started = time.perf_counter()
                facts = analyze(mono, settings)
                best[name] = min(best[name], time.perf_counter() - started)
        times["tempo_key"] += best["tempo_key"]
        times["full"] += best["full"]
        pairs.append((facts.bpm, facts.key_name, bpm if synth.STYLES[genre].pulse else NO_PULSE, key))
        per_genre.setdefault(genre, []).append(pairs[-1])
    audio_s = args.pieces * args.seconds
    result = {
        "pieces": args.pieces,
        "seconds_each": args.seconds,
        "warm_up_s": round(warm_up_s, 2),
        # One process, one thread of work: these are per core.
        "x_realtime_per_core": {name: round(audio_s / t, 1) for name, t in times.items()},
        "over_decode_floor": {name: round(t / times["decode"], 2) for name, t in times.items() if name != "decode"},
        "accuracy": accuracy_report(pairs),
        "by_genre": {genre: accuracy_report(p) for genre, p in per_genre.items()},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
