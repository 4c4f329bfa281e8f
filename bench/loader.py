"""Loader and shard-writing throughput against floors measured in the same run (machines
here are noisy; only ratios mean something).

1. Loader: samples/s of shards.loader.loader (tar → shuffle buffer → FLAC decode → crop/pad →
   prompt → collate, 2 workers, as threads (the default) and as DataLoader processes) against
   the floor of reading the same tars and decoding every FLAC with nothing else, in as many
   processes. Target >= 0.8. The crop is
   the whole clip (every sample decoded in full, as in the floor); a second line shows a
   10 s crop, where the loader decodes only the crop. CPU seconds per sample (all
   processes) are reported beside: on a shared machine they vary less than wall time.
2. Writing: `soundry shard` (local engine, engine start apart) against plain tar writing of
   the same bytes (the clip table's FLAC read and written into tars with tarfile), same
   number of processes.

    .venv/bin/python bench/loader.py [CORPUS] [--workers 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import soundfile

# Run as a script, this file's folder is first on sys.path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parents[1])
from rich.console import Console  # noqa: E402

from curation.clip import clip_parts, summary_url  # noqa: E402
from curation.core.storage import exists  # noqa: E402
from curation.demo.corpus import generate_demo_corpus  # noqa: E402
from orchestration.configs.jobs import ShardJob  # noqa: E402
from orchestration.jobs.shard import write_shards  # noqa: E402
from shards.loader.config import LoaderConfig  # noqa: E402
from shards.loader.loader import make_loader  # noqa: E402

CACHE = Path(__file__).resolve().parents[1] / "build" / "bench"
TARGET = 0.8


def soundry(*args: str) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def prepare(corpus: Path, workers: int) -> tuple[Path, Path]:
    """The curated corpus (cached) and a fresh version published from it."""
    curated = CACHE / "loader" / "curated"
    if not exists(summary_url(str(curated))):
        soundry("curate", str(corpus), "--output", str(curated), "--runner.workers", str(workers))
    return curated, CACHE / "loader" / "versions"


def _read_and_decode(urls: list[str]) -> int:
    samples = 0
    for url in urls:
        with tarfile.open(url, mode="r|") as archive:
            for member in archive:
                data = archive.extractfile(member).read()
                if member.name.endswith(".flac"):
                    soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
                    samples += 1
    return samples


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (pool and DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def floor_rates(urls: list[str], workers: int) -> tuple[float, float]:
    """Samples per second, and CPU seconds per sample."""
    chunks = [urls[i::workers] for i in range(workers)]
    cpu, started = cpu_seconds(), time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:  # started inside the timing, as DataLoader workers are
        samples = sum(pool.map(_read_and_decode, chunks))
    return samples / (time.perf_counter() - started), (cpu_seconds() - cpu) / samples


def loader_rates(version: Path, config: LoaderConfig) -> tuple[float, float]:
    loader = make_loader(str(version), config, seed=0)
    cpu, started = cpu_seconds(), time.perf_counter()
    samples = sum(len(batch["key"]) for batch in loader)
    return samples / (time.perf_counter() - started), (cpu_seconds() - cpu) / samples


def _copy_into_tars(job: tuple[list[str], str]) -> int:
    parts, out = job
    written = 0
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as archive:
        for part in parts:
            table = pq.read_table(part, columns=["clip_id", "audio_flac"])
            for clip_id, flac in zip(table["clip_id"].to_pylist(), table["audio_flac"].to_pylist(), strict=True):
                info = tarfile.TarInfo(f"{clip_id}.flac")
                info.size = len(flac)
                archive.addfile(info, io.BytesIO(flac))
                written += len(flac)
    return written


def plain_tar_mb_per_s(curated: Path, scratch: Path, workers: int) -> float:
    parts = clip_parts(str(curated))
    scratch.mkdir(parents=True, exist_ok=True)
    jobs = [(parts[i::workers], str(scratch / f"plain-{i}.tar")) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(abs, range(workers)))  # start the processes outside the timing, as the engine's start is
        started = time.perf_counter()
        written = sum(pool.map(_copy_into_tars, jobs))
    return written / 1e6 / (time.perf_counter() - started)


def shard_mb_per_s(curated: Path, versions: Path, workers: int) -> tuple[float, dict]:
    shutil.rmtree(versions, ignore_errors=True)
    job = ShardJob.model_validate(
        {
            "clips": str(curated),
            "root": str(versions),
            "version": "bench",
            "splits": {"fractions": {"train": 1.0}},
            "shards": {"min_shards": 8},
            "runner": {"workers": workers},
        }
    )
    summary = write_shards(job, Console(file=open(os.devnull, "w")))
    return summary["mb_per_s"], summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="music corpus (default: the demo corpus, generated)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="measurements of each side (the median is reported)")
    args = parser.parse_args()
    corpus = Path(args.corpus) if args.corpus else CACHE / "demo-corpus"
    if not args.corpus:
        generate_demo_corpus(corpus, workers=args.workers)
    curated, versions = prepare(corpus, args.workers)

    shard_rate, summary = shard_mb_per_s(curated, versions, args.workers)
    plain_rate = plain_tar_mb_per_s(curated, CACHE / "loader" / "plain", args.workers)
    shutil.rmtree(CACHE / "loader" / "plain", ignore_errors=True)
    soundry(
        "publish",
        str(curated),
        "--root",
        str(versions),
        "--version",
        "bench",
        "--splits.fractions",
        "{train: 1.0}",
        "--shards.min_shards",
        "8",
        "--runner.workers",
        str(args.workers),
    )
    version = versions / "bench"
    manifest = json.loads((version / "manifest.json").read_text())
    urls = [str(version / s["tar"]) for s in manifest["shards"]]
    rate = manifest["audio"]["sample_rate"]
    longest = int(max(json.loads((version / "stats.json").read_text())["durations_s"]["max"], 1) * rate) + 1

    results = {
        "clips": manifest["totals"]["clips"],
        "hours": manifest["totals"]["hours"],
        "shards": len(urls),
        "workers": args.workers,
        "load_average_at_start": os.getloadavg()[0],
    }
    for crop, sample_size in (("whole_clip", longest), ("crop_10s", 10 * rate)):
        for kind in ("thread", "process"):
            config = LoaderConfig(batch_size=4, num_workers=args.workers, sample_size=sample_size, worker_kind=kind)
            floor, loader = [], []
            for _ in range(args.epochs):  # interleaved, so both sides see the same machine
                floor.append(floor_rates(urls, args.workers))
                loader.append(loader_rates(version, config))
            floor_rate, loader_rate = statistics.median(r for r, _ in floor), statistics.median(r for r, _ in loader)
            floor_cpu, loader_cpu = statistics.median(c for _, c in floor), statistics.median(c for _, c in loader)
            results[f"{crop}_{kind}"] = {
                "floor_samples_per_s": floor_rate,
                "loader_samples_per_s": loader_rate,
                "ratio": loader_rate / floor_rate,
                "floor_cpu_ms_per_sample": 1000 * floor_cpu,
                "loader_cpu_ms_per_sample": 1000 * loader_cpu,
                "cpu_ratio": floor_cpu / loader_cpu,
            }
    results["write"] = {
        "shard_mb_per_s": shard_rate,
        "plain_tar_mb_per_s": plain_rate,
        "ratio": shard_rate / plain_rate,
        "engine_start_s": summary["phases_s"].get("engine_start_s"),
        "bytes": summary["bytes"],
    }
    (CACHE / "loader" / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    whole = results["whole_clip_thread"]
    verdict = "meets" if whole["ratio"] >= TARGET else "misses"
    print(
        f"loader (worker threads) {whole['loader_samples_per_s']:.1f} samples/s vs floor "
        f"{whole['floor_samples_per_s']:.1f}: "
        f"{whole['ratio']:.2f} ({verdict} the {TARGET} target; CPU per sample {whole['cpu_ratio']:.2f}); shard writing "
        f"{shard_rate:.0f} MB/s vs plain tar {plain_rate:.0f} MB/s: {results['write']['ratio']:.2f}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
