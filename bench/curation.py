"""Curation throughput against floors measured in the same run (machines here are noisy;
only ratios mean something).

1. Music corpus (FOLDER, default: the demo corpus): soundry curate on each engine against two
   floors over the same files with the same number of processes:
   - the in-process ceiling: decoding with the decoder soundry picks for each codec
     (libsndfile or PyAV, streaming), remixing to stereo, resampling to 44.1 kHz (soxr) and
     FLAC-encoding 30 s clips alone, with no probe, measure, hash or table. Targets: local
     >= 0.85 of it, ray and beam >= 0.75.
   - the ffmpeg CLI alone decoding + resampling (soxr) + FLAC-encoding, a process per file.
   Engine start and stop (Ray, Beam, the local pool) are printed apart; a cluster's engine is up.
   --baseline TREE: each run is also made with the code in TREE (another checkout, e.g.
   `git worktree add /tmp/before main`), alternating which goes first, each with its own
   in-process ceiling: the ratio of the two medians is this code's speed against that code's.
   The short files' runs (2.) alternate with TREE's the same way.
2. Short files (--short FOLDER, default: 1,200 generated 1-3 s effects): files/s against the
   same in-process ceiling (decode + resample + FLAC encode: what the clip table's contract
   costs). Target >= 0.7. Decoding alone with soundfile is printed beside it.
3. Memory: peak RSS per worker for one file of 8, 32 and 128 minutes and for corpora of
   300 and 1,200 short files; it must stay flat.

--split prints, instead, where a short file's time goes: CPU time per file of each step of
a unit (probe, hashing, decoding, measuring, encoding, the rest of `run_unit`), in this
process over 200 short files, best of 3; process time, so other jobs move it less.

A file a floor cannot decode (FFmpeg cannot read it, or its decoder refuses it) is left out
of that floor and counted; soundry's run still gets it (and keeps it or rejects it).
Other work on a shared machine moves both sides of a ratio, so every run is paired with
floors measured just before it, and the median and spread of --repeat pairs is printed
with the load average.

    .venv/bin/python bench/curation.py [FOLDER] [--short FOLDER] [--workers N] [--engines local,ray,beam] [--repeat 3]
        [--baseline TREE]
    .venv/bin/python bench/curation.py --split [--short FOLDER]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

if __name__ == "__main__":
    # Run as a script, this file's folder is first on sys.path, and this file's name would
    # shadow the `curation` package: put the repository root there instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
from bench.curation_floors import (  # noqa: E402
    Source,
    audio_files,
    decode_resample_encode,
    ffmpeg_floor,
    in_process_floor,
    sources,
)
from curation.config import AudioFormat, CurationConfig, Decoding, Encoding  # noqa: E402
from curation.decode import choose_backend, decode  # noqa: E402
from curation.demo.corpus import generate_demo_corpus  # noqa: E402
from curation.discover import WorkUnit, discover  # noqa: E402
from curation.encode import encode_flac, pcm_sha256, quantize_pcm16  # noqa: E402
from curation.ffmpeg_binary import find_ffmpeg  # noqa: E402
from curation.measure import measure  # noqa: E402
from curation.probe import probe  # noqa: E402
from curation.unit import run_unit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench"
TARGETS = {"local": 0.85, "ray": 0.75, "beam": 0.75}  # music, of the in-process ceiling
SHORT_TARGET = 0.7  # short files, of the in-process ceiling
SHORT_FILES = ("--segment.min_clip_s", "0.5")  # the 1-3 s effects, under the default 2 s minimum


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
                str(inputs.resolve()),  # the baseline runs in another folder
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


def cpu_split(folder: Path, count: int = 200) -> dict[str, float]:
    """CPU milliseconds per file of each step of a unit over `count` short files, best of 3,
    and of the whole `run_unit`; what `run_unit` spends beyond the steps is "rest"."""
    config = CurationConfig.model_validate(
        {"inputs": [{"path": str(folder)}], "output": str(CACHE / "split-unused"), "segment": {"min_clip_s": 0.5}}
    )
    planned = [f for f in discover(config.inputs) if not f.uri.endswith(".json")][:count]
    paths = [f.uri for f in planned]

    def best(step):
        times = []
        for _ in range(3):
            started = time.process_time()
            result = step()
            times.append(time.process_time() - started)
        return min(times) * 1000 / len(paths), result

    def hash_files() -> None:
        for path in paths:
            with open(path, "rb") as f:
                hashlib.file_digest(f, "sha256")

    split: dict[str, float] = {}
    split["probe"], facts = best(lambda: [probe(p) for p in paths])
    split["hash file"], _ = best(hash_files)
    target, decoding = AudioFormat(), Decoding()
    split["decode + resample"], pcms = best(
        lambda: [
            np.concatenate(list(decode(p, f, choose_backend(f, decoding), decoding, target)))
            for p, f in zip(paths, facts, strict=True)
        ]
    )
    split["measure"], _ = best(lambda: [measure(pcm, target.sample_rate) for pcm in pcms])
    split["quantize"], pcm16s = best(lambda: [quantize_pcm16(pcm) for pcm in pcms])
    split["hash PCM"], _ = best(lambda: [pcm_sha256(pcm16) for pcm16 in pcm16s])
    compression = Encoding().flac_compression
    split["FLAC encode"], _ = best(lambda: [encode_flac(x, target.sample_rate, compression) for x in pcm16s])

    def whole_unit() -> None:
        output = Path(tempfile.mkdtemp(prefix="split-", dir=CACHE))
        run_unit(WorkUnit("split", tuple(planned)), config.model_copy(update={"output": str(output)}))
        shutil.rmtree(output)

    unit_ms, _ = best(whole_unit)
    split["rest (segment, rows, Parquet)"] = unit_ms - sum(split.values())
    return {**split, "run_unit": unit_ms}


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
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine, each paired with its own floors")
    parser.add_argument("--skip-memory", action="store_true", help="skip the long-file memory check")
    parser.add_argument("--split", action="store_true", help="only print a short file's CPU time per step")
    parser.add_argument("--baseline", help="another checkout: its curate runs alternate with this one's (music)")
    args = parser.parse_args()
    if args.split:
        _print_split(Path(args.short) if args.short else make_short_files(CACHE / "short-1200", 1200))
        return
    engines = [engine for engine in args.engines.split(",") if engine]  # "": short files and memory only
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = Path(args.folder) if args.folder else CACHE / "demo-corpus"
    if not args.folder:
        generate_demo_corpus(folder, workers=args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="soundry-bench-", dir=CACHE))
    print(f"machine: {os.cpu_count()} cores, workers: {args.workers}, ffmpeg: {find_ffmpeg()}")

    if engines:
        files = audio_files(folder)
        items, not_audio = sources(files)
        print(f"\n1. music corpus {folder}: {len(files)} files")
        _print_left_out(not_audio, "FFmpeg cannot read")
    for engine in engines:
        ratios, cli_ratios, loads = [], [], []
        baseline: list[float] = []
        for run in range(args.repeat):
            if args.baseline and run % 2 == 0:  # alternate which goes first: load drifts
                baseline.append(_music_ratio(items, folder, scratch, engine, args.workers, Path(args.baseline)))
            loads.append(os.getloadavg()[0])
            cli = ffmpeg_floor(items, args.workers, scratch / "floor")
            ceiling = in_process_floor(items, args.workers, decode_resample_encode)
            summary = curate(folder, scratch / f"music-{engine}-{run}", engine, args.workers)
            audio_s = summary["hours_in"] * 3600
            ours_x = audio_s / work_seconds(summary)
            ratios.append(ours_x / ceiling.x_realtime)
            cli_ratios.append(ours_x / cli.x_realtime)
            loads.append(os.getloadavg()[0])
            phases = summary["phases_s"]
            print(
                f"   {engine:5s}: {ours_x:7.1f}x realtime vs in-process ceiling {ceiling.x_realtime:6.1f}x -> ratio "
                f"{ratios[-1]:.2f}; vs ffmpeg CLI {cli.x_realtime:6.1f}x -> {cli_ratios[-1]:.2f}  "
                f"[engine start {phases['engine_start_s']:.1f} s, stop {phases['engine_stop_s']:.1f} s, "
                f"with it {audio_s / summary['wall_s']:.1f}x; peak RSS/worker "
                f"{summary['peak_rss_mb_per_worker']:.0f} MB; load {loads[-2]:.1f}]"
            )
            _print_left_out(ceiling.refused, "the in-process ceiling's decoder refuses")
            _print_left_out(cli.refused, "the ffmpeg CLI fails on")
            if args.baseline and run % 2 == 1:
                baseline.append(_music_ratio(items, folder, scratch, engine, args.workers, Path(args.baseline)))
        print(f"   {engine:5s}: of the in-process ceiling: {spread(ratios, loads)} (target >= {TARGETS[engine]})")
        print(f"   {engine:5s}: of the ffmpeg CLI:         {spread(cli_ratios, loads)}")
        if baseline:
            _print_baseline(engine, args.baseline, ratios, baseline)

    short = Path(args.short) if args.short else make_short_files(CACHE / "short-1200", 1200)
    short_files = audio_files(short)
    short_items, not_audio = sources(short_files)
    print(f"\n2. short files {short}: {len(short_files)} files")
    _print_left_out(not_audio, "FFmpeg cannot read")
    ratios, decode_ratios, loads = [], [], []
    short_baseline: list[float] = []
    for run in range(args.repeat):
        if args.baseline and run % 2 == 0:
            short_baseline.append(
                _short_ratio(short_items, len(short_files), short, scratch, args.workers, Path(args.baseline))
            )
        loads.append(os.getloadavg()[0])
        decode_only = in_process_floor(short_items, args.workers)
        ceiling = in_process_floor(short_items, args.workers, decode_resample_encode)
        summary = curate(short, scratch / f"short-{run}", "local", args.workers, *SHORT_FILES)
        ours = len(short_files) / work_seconds(summary)
        ratios.append(ours / ceiling.files_per_s)
        decode_ratios.append(ours / decode_only.files_per_s)
        loads.append(os.getloadavg()[0])
        phases = summary["phases_s"]
        print(
            f"   local: {ours:7.1f} files/s vs in-process ceiling {ceiling.files_per_s:7.1f} files/s -> ratio "
            f"{ratios[-1]:.2f}; vs decoding alone (soundfile) {decode_only.files_per_s:7.1f} files/s -> "
            f"{decode_ratios[-1]:.2f}  [plan {phases['plan_s']:.2f} s, units {phases['units_s']:.2f} s, "
            f"dedup {phases['dedup_s']:.2f} s; peak RSS/worker {summary['peak_rss_mb_per_worker']:.0f} MB; "
            f"load {loads[-2]:.1f}]"
        )
        _print_left_out(ceiling.refused, "the in-process ceiling's decoder refuses")
        _print_left_out(decode_only.refused, "libsndfile refuses")
        if args.baseline and run % 2 == 1:
            short_baseline.append(
                _short_ratio(short_items, len(short_files), short, scratch, args.workers, Path(args.baseline))
            )
    print(f"   local: of the in-process ceiling: {spread(ratios, loads)} (target >= {SHORT_TARGET})")
    print(f"   local: of decoding alone:         {spread(decode_ratios, loads)}")
    if short_baseline:
        _print_baseline("local", args.baseline, ratios, short_baseline)

    print("\n3. memory: peak RSS per worker")
    small = make_short_files(CACHE / "short-300", 300, seed=1)
    by_corpus = {
        "300 short files": curate(small, scratch / "mem-300", "local", args.workers, *SHORT_FILES)[
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


def _print_split(folder: Path) -> None:
    split = cpu_split(folder)
    unit = split.pop("run_unit")
    print(f"CPU time per short file ({folder}, one process, best of 3): run_unit {unit:.2f} ms")
    for step, ms in split.items():
        print(f"   {step:30s} {ms:5.2f} ms  {ms / unit:4.0%}")
    ceiling = split["decode + resample"] + split["quantize"] + split["FLAC encode"]
    print(f"   the ceiling's steps (decode + resample, quantize, FLAC encode): {ceiling / unit:.2f} of run_unit")


def _print_left_out(count: int, why: str) -> None:
    if count:
        print(f"          {count} file(s) {why}: left out of that floor, still in soundry's run")


def _music_ratio(items: list[Source], folder: Path, scratch: Path, engine: str, workers: int, code: Path) -> float:
    """The music ratio of another checkout's code, against its own in-process ceiling."""
    ceiling = in_process_floor(items, workers, decode_resample_encode)
    summary = curate(folder, scratch / f"baseline-{engine}", engine, workers, code=code)
    realtime = summary["hours_in"] * 3600 / work_seconds(summary)
    ratio = realtime / ceiling.x_realtime
    print(f"   {engine:5s} (baseline): {realtime:7.1f}x realtime, ratio {ratio:.2f}")
    return ratio


def _short_ratio(items: list[Source], files: int, folder: Path, scratch: Path, workers: int, code: Path) -> float:
    """The `files` short files curated by the checkout in `code`, against its own ceiling run."""
    ceiling = in_process_floor(items, workers, decode_resample_encode)
    summary = curate(folder, scratch / "short-baseline", "local", workers, *SHORT_FILES, code=code)
    files_per_s = files / work_seconds(summary)
    ratio = files_per_s / ceiling.files_per_s
    print(f"   local (baseline): {files_per_s:7.1f} files/s, ratio {ratio:.2f}")
    return ratio


def _print_baseline(engine: str, tree: str, ratios: list[float], baseline: list[float]) -> None:
    print(
        f"   {engine:5s}: baseline {tree}: ratio {statistics.median(baseline):.2f} "
        f"({', '.join(f'{r:.2f}' for r in baseline)}) -> this code / baseline "
        f"{statistics.median(ratios) / statistics.median(baseline):.2f}"
    )


def _print_growth(title: str, rss: dict[str, float]) -> None:
    print(
        f"   {title}: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())
        + f" -> last/first {list(rss.values())[-1] / list(rss.values())[0]:.2f} (flat: close to 1)"
    )


if __name__ == "__main__":
    main()
