"""Curation throughput against floors measured in the same run (machines here are noisy;
only ratios mean something).

1. Music corpus (FOLDER, default: the demo corpus): soundry curate on each engine vs the
   floor, the ffmpeg CLI alone decoding + resampling (soxr) + FLAC-encoding the same
   files with the same number of processes. Targets: local >= 0.85, ray and beam >= 0.75.
   Engine start (Ray, Beam) is printed apart; a cluster's engine is already up.
   --baseline TREE: each run is also made with the code in TREE (another checkout, e.g.
   `git worktree add /tmp/before main`), alternating which goes first, each with its own
   floor: the ratio of the two medians is this code's speed against that code's.
2. Short files (--short FOLDER, default: 1,200 generated 1-3 s effects): files/s vs the
   floor of decoding the same files in-process with soundfile, same processes. Target >= 0.5.
   Also measured in the same run: decoding, resampling to 44.1 kHz and FLAC-encoding alone
   (what every stored clip needs), whose ratio to the decode floor is the ceiling of any
   curation that stores clips as FLAC.
3. Memory: peak RSS per worker for one file of 8, 32 and 128 minutes and for corpora of
   300 and 1,200 short files; it must stay flat.

Other work on a shared machine moves both sides of a ratio, so every run is paired with a
floor measured just before it, and the median and spread of --repeat pairs is printed
with the load average.

    .venv/bin/python bench/curation.py [FOLDER] [--short FOLDER] [--workers N] [--engines local,ray,beam] [--repeat 3]
        [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import soxr

# Run as a script, this file's folder is first on sys.path, and this file's name would
# shadow the `curation` package: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])
from curation.demo.corpus import generate_demo_corpus  # noqa: E402
from curation.encode import encode_flac, quantize_pcm16  # noqa: E402
from curation.ffmpeg_binary import find_ffmpeg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench"
TARGETS = {"local": 0.85, "ray": 0.75, "beam": 0.75}
SHORT_TARGET = 0.5


def curate(inputs: Path, output: Path, engine: str, workers: int, *extra: str, code: Path | None = None) -> dict:
    """One `soundry curate` in a fresh process, so each run's peak RSS is its own; its
    output is removed once its summary is read. `code`: the checkout whose soundry runs
    (`python -m` imports from the working folder first); default: this one."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "curate",
                str(inputs),
                "--output",
                str(output),
                "--runner.name",
                engine,
                "--runner.workers",
                str(workers),
                *extra,
            ],
            check=True,
            env=env,
            cwd=code or ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads((output / "summary.json").read_text())
    finally:
        shutil.rmtree(output, ignore_errors=True)


def work_seconds(summary: dict) -> float:
    """Wall time without the engine's start and stop (a cluster's engine is already up)."""
    phases = summary["phases_s"]
    return summary["wall_s"] - phases["engine_start_s"] - phases["engine_stop_s"]


def spread(ratios: list[float], loads: list[float]) -> str:
    ordered = sorted(ratios)
    return (
        f"ratio {statistics.median(ordered):.2f} (min {ordered[0]:.2f}, max {ordered[-1]:.2f}, {len(ordered)} runs; "
        f"load {min(loads):.1f}-{max(loads):.1f})"
    )


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".json"))


def ffmpeg_floor(files: list[Path], workers: int, scratch: Path) -> float:
    """Seconds for the ffmpeg CLI to decode, resample to 44.1 kHz stereo and FLAC-encode."""
    binary = find_ffmpeg()
    scratch.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, Path]) -> None:
        index, path = item
        subprocess.run(
            [
                binary,
                "-nostdin",
                "-v",
                "fatal",
                "-y",
                "-i",
                str(path),
                "-ar",
                "44100",
                "-ac",
                "2",
                "-af",
                "aresample=resampler=soxr",
                "-c:a",
                "flac",
                str(scratch / f"{index}.flac"),
            ],
            check=True,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # each thread waits on its own ffmpeg process
        list(pool.map(one, enumerate(files)))
    return time.perf_counter() - started


def _read_all(paths: list[str]) -> int:
    for path in paths:
        soundfile.read(path, dtype="float32")
    return len(paths)


def _read_and_encode_all(paths: list[str]) -> int:
    """What every stored clip needs at the least: decoded, at 44.1 kHz, FLAC-encoded."""
    for path in paths:
        pcm, rate = soundfile.read(path, dtype="float32", always_2d=True)
        if rate != 44100:
            pcm = soxr.resample(pcm, rate, 44100, quality="HQ")
        encode_flac(quantize_pcm16(pcm), 44100)
    return len(paths)


def in_process_floor(files: list[Path], workers: int, work=_read_all) -> float:
    """Seconds for `work` (by default: decode with libsndfile) over every file, in-process,
    same number of processes."""
    chunks = [[str(p) for p in files[i::workers]] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(work, [c[:2] for c in chunks]))  # start the processes outside the timing
        started = time.perf_counter()
        list(pool.map(work, chunks))
    return time.perf_counter() - started


def make_short_files(folder: Path, count: int, seed: int = 0) -> Path:
    """Sound-effect-like files of 1-3 s in the formats effect libraries hold."""
    marker = folder.parent / f"{folder.name}.complete"  # beside, not inside: it is no input
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    formats = [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]
    for i in range(count):
        rate = 44100 if i % 3 else 48000
        n = int(rng.uniform(1.0, 3.0) * rate)
        t = np.arange(n) / rate
        body = np.sin(2 * np.pi * rng.uniform(80, 3000) * t * (1 + rng.uniform(-0.3, 0.3) * t)) + rng.standard_normal(
            n
        ) * rng.uniform(0.05, 0.5)
        envelope = np.exp(-t * rng.uniform(0.5, 4.0)) * np.minimum(1, t * 200)
        pcm = (np.stack([body, np.roll(body, 7)], 1) * envelope[:, None] * 0.4).astype(np.float32)
        extension, subtype = formats[i % len(formats)]
        soundfile.write(str(folder / f"sfx-{i:05d}.{extension}"), pcm, rate, subtype=subtype)
    marker.touch()
    return folder


def make_long_file(path: Path, minutes: int) -> Path:
    """A long WAV written in chunks, so making it needs no memory either."""
    if path.exists():
        return path
    rate, chunk = 44100, 44100 * 10
    rng = np.random.default_rng(minutes)
    with soundfile.SoundFile(str(path) + ".tmp", "w", rate, 2, "PCM_16", format="WAV") as f:
        for start in range(0, minutes * 60 * rate, chunk):
            t = (start + np.arange(chunk)) / rate
            x = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(chunk)
            f.write(np.stack([x, x * 0.8], 1).astype(np.float32))
    os.replace(str(path) + ".tmp", path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="music corpus (default: the demo corpus, generated)")
    parser.add_argument("--short", help="folder of >= 1000 short files (default: generated)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engines", default="local,ray,beam")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine, each paired with its own floor")
    parser.add_argument("--skip-memory", action="store_true", help="skip the long-file memory check")
    parser.add_argument("--baseline", help="another checkout: its curate runs alternate with this one's (music)")
    args = parser.parse_args()
    engines = [engine for engine in args.engines.split(",") if engine]  # "": short files and memory only
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = Path(args.folder) if args.folder else CACHE / "demo-corpus"
    if not args.folder:
        generate_demo_corpus(folder, workers=args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="soundry-bench-", dir=CACHE))
    files = audio_files(folder)
    print(f"machine: {os.cpu_count()} cores, workers: {args.workers}, ffmpeg: {find_ffmpeg()}")

    # Other work on the machine changes both sides of a ratio; each run is paired with a
    # floor measured just before it, and the spread over --repeat pairs is printed.
    print(f"\n1. music corpus {folder}: {len(files)} files")
    for engine in engines:
        ratios, loads = [], []
        baseline: list[float] = []
        for run in range(args.repeat):
            if args.baseline and run % 2 == 0:  # alternate which goes first: load drifts
                baseline.append(_music_ratio(files, folder, scratch, engine, args.workers, Path(args.baseline)))
            loads.append(os.getloadavg()[0])
            floor_s = ffmpeg_floor(files, args.workers, scratch / "floor")
            summary = curate(folder, scratch / f"music-{engine}-{run}", engine, args.workers)
            audio_s = summary["hours_in"] * 3600
            floor_x, ours_x = audio_s / floor_s, audio_s / work_seconds(summary)
            ratios.append(ours_x / floor_x)
            loads.append(os.getloadavg()[0])
            phases = summary["phases_s"]
            print(
                f"   {engine:5s}: {ours_x:7.1f}x realtime vs floor {floor_x:6.1f}x (ffmpeg CLI) -> ratio "
                f"{ratios[-1]:.2f}  "
                f"[engine start {phases['engine_start_s']:.1f} s, stop {phases['engine_stop_s']:.1f} s, "
                f"with it {audio_s / summary['wall_s']:.1f}x; peak RSS/worker "
                f"{summary['peak_rss_mb_per_worker']:.0f} MB; "
                f"load {loads[-2]:.1f}]"
            )
            if args.baseline and run % 2 == 1:
                baseline.append(_music_ratio(files, folder, scratch, engine, args.workers, Path(args.baseline)))
        print(f"   {engine:5s}: {spread(ratios, loads)} (target >= {TARGETS[engine]})")
        if baseline:
            print(
                f"   {engine:5s}: baseline {args.baseline}: ratio {statistics.median(baseline):.2f} "
                f"({', '.join(f'{r:.2f}' for r in baseline)}) -> this code / baseline "
                f"{statistics.median(ratios) / statistics.median(baseline):.2f}"
            )

    short = Path(args.short) if args.short else make_short_files(CACHE / "short-1200", 1200)
    short_files = audio_files(short)
    print(f"\n2. short files {short}: {len(short_files)} files")
    ratios, ceilings, loads = [], [], []
    for run in range(args.repeat):
        loads.append(os.getloadavg()[0])
        floor = len(short_files) / in_process_floor(short_files, args.workers)
        with_flac = len(short_files) / in_process_floor(short_files, args.workers, _read_and_encode_all)
        summary = curate(short, scratch / f"short-{run}", "local", args.workers, "--segment.min_clip_s", "0.5")
        ours = len(short_files) / work_seconds(summary)
        ratios.append(ours / floor)
        ceilings.append(with_flac / floor)
        loads.append(os.getloadavg()[0])
        print(
            f"   local: {ours:7.1f} files/s vs floor {floor:7.1f} files/s (soundfile in-process) -> ratio "
            f"{ratios[-1]:.2f}  "
            f"[{summary['x_realtime']:.0f}x realtime, peak RSS/worker {summary['peak_rss_mb_per_worker']:.0f} MB; "
            f"load {loads[-2]:.1f}]\n"
            f"          decode + resample + FLAC encode alone {with_flac:7.1f} files/s -> {ceilings[-1]:.2f} of the "
            f"floor; "
            f"soundry is {ours / with_flac:.2f} of it"
        )
    print(f"   local: {spread(ratios, loads)} (target >= {SHORT_TARGET})")
    print(
        f"   ceiling while clips are stored as FLAC (decode + resample + encode alone): "
        f"{statistics.median(ceilings):.2f} of the floor"
    )

    print("\n3. memory: peak RSS per worker")
    small = make_short_files(CACHE / "short-300", 300, seed=1)
    by_corpus = {
        "300 short files": curate(small, scratch / "mem-300", "local", args.workers, "--segment.min_clip_s", "0.5")[
            "peak_rss_mb_per_worker"
        ],
        "1200 short files": summary["peak_rss_mb_per_worker"],
    }
    _print_growth("as the corpus grows", by_corpus)
    if not args.skip_memory:
        by_length = {}
        for minutes in (8, 32, 128):  # all longer than two row groups of clips
            long_file = make_long_file(CACHE / f"long-{minutes}min.wav", minutes)
            by_length[f"one {minutes} min file"] = curate(long_file, scratch / f"mem-{minutes}", "local", 1)[
                "peak_rss_mb_per_worker"
            ]
        _print_growth("as files get longer", by_length)
    shutil.rmtree(scratch, ignore_errors=True)


def _music_ratio(files: list[Path], folder: Path, scratch: Path, engine: str, workers: int, code: Path) -> float:
    """The music ratio of another checkout's code, against its own floor."""
    floor_s = ffmpeg_floor(files, workers, scratch / "floor")
    summary = curate(folder, scratch / f"baseline-{engine}", engine, workers, code=code)
    realtime, ratio = summary["hours_in"] * 3600 / work_seconds(summary), floor_s / work_seconds(summary)
    print(f"   {engine:5s} (baseline): {realtime:7.1f}x realtime, ratio {ratio:.2f}")
    return ratio


def _print_growth(title: str, rss: dict[str, float]) -> None:
    print(
        f"   {title}: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())
        + f" -> last/first {list(rss.values())[-1] / list(rss.values())[0]:.2f} (flat: close to 1)"
    )


if __name__ == "__main__":
    main()
