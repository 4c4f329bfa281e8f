"""Curation through an object store against local disk, measured in the same run.

The same corpus (FOLDER, default: the demo corpus, 36 pieces, generated into build/bench) is
curated by `soundry curate` in a fresh process, alternately:
- disk: inputs and output in local folders (the floor);
- s3: inputs uploaded to a bucket and the output written there, through an S3 API on
  localhost (moto's standalone server, as the tests start it), endpoint and credentials from
  the environment;
and the object-store run's throughput (audio seconds per second of work, engine start and stop
left out) is printed as a ratio to the disk run's, median of --repeat pairs with the load.

moto keeps objects in its own Python process, so every request costs a few milliseconds of
CPU on this machine that a real store spends elsewhere, while latency is a loopback's: read the
ratio as soundry's own cost of talking S3 (one PUT per output, reads through fsspec), not as a
forecast for a real store across a network.

    .venv/bin/python bench/object_store.py [FOLDER] [--workers 2] [--engine local] [--repeat 3]
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
import uuid
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder is first on sys.path; the repository root goes there,
    # and the tests' folder (the S3 server helper) last, where its packages shadow nothing.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from curation.core.storage import filesystem  # noqa: E402
from curation.demo.corpus import generate_demo_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench"


def curate(inputs: str, output: str, engine: str, workers: int, env: dict[str, str]) -> dict:
    """One `soundry curate` in a fresh process; its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "curate", "--inputs", f"[{{path: '{inputs}'}}]"]
        + ["--output", output, "--runner.name", engine, "--runner.workers", str(workers)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"soundry curate {inputs} -> {output} failed:\n{done.stderr[-3000:]}")
    fs, path = filesystem(f"{output}/summary.json")
    return json.loads(fs.cat_file(path))


def throughput(summary: dict) -> float:
    """Audio seconds curated per second of work (the engine's start and stop left out)."""
    phases = summary["phases_s"]
    work = summary["wall_s"] - phases["engine_start_s"] - phases["engine_stop_s"]
    return summary["hours_in"] * 3600 / work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="audio corpus (default: the demo corpus, generated)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engine", default="local", choices=["local", "ray", "beam"])
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs, alternating which goes first")
    args = parser.parse_args()
    from s3_server import s3_server

    CACHE.mkdir(parents=True, exist_ok=True)
    folder = Path(args.folder) if args.folder else CACHE / "demo-corpus"
    if not args.folder:
        generate_demo_corpus(folder, workers=args.workers)
    files = sorted(p for p in folder.rglob("*") if p.is_file())  # all of them: both runs see the same files
    scratch = Path(tempfile.mkdtemp(prefix="soundry-bench-object-store-", dir=CACHE))
    with s3_server(scratch / "s3-server.log") as server:
        env = {**os.environ, **server.environment(), "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
        os.environ.update(server.environment())
        fs, _ = filesystem(server.url())
        started = time.perf_counter()
        for file in files:
            fs.put_file(str(file), server.url("in", str(file.relative_to(folder))).removeprefix("s3://"))
        upload_s = time.perf_counter() - started
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"corpus: {len(files)} files, {size_mb:.0f} MB; uploaded to {server.endpoint} in {upload_s:.1f} s")
        ratios, loads, speeds = [], [], {"disk": [], "s3": []}
        for run in range(args.repeat):
            places = {
                "disk": (str(folder), str(scratch / f"out-{uuid.uuid4().hex}")),
                "s3": (server.url("in"), server.url(f"out-{uuid.uuid4().hex}")),
            }
            order = ["disk", "s3"] if run % 2 == 0 else ["s3", "disk"]
            loads.append(os.getloadavg()[0])
            for where in order:
                speeds[where].append(throughput(curate(*places[where], args.engine, args.workers, env)))
            shutil.rmtree(places["disk"][1])
            fs.rm(places["s3"][1].removeprefix("s3://"), recursive=True)
            ratios.append(speeds["s3"][-1] / speeds["disk"][-1])
            print(
                f"run {run + 1}: disk {speeds['disk'][-1]:.1f} x realtime, s3 {speeds['s3'][-1]:.1f} x realtime, "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
    shutil.rmtree(scratch, ignore_errors=True)
    ordered = sorted(ratios)
    print(
        f"{args.engine} engine, {args.workers} workers: s3 / disk throughput ratio {statistics.median(ordered):.2f} "
        f"(min {ordered[0]:.2f}, max {ordered[-1]:.2f}, {len(ordered)} pairs; "
        f"disk median {statistics.median(speeds['disk']):.1f} x realtime; load {min(loads):.1f}-{max(loads):.1f})"
    )


if __name__ == "__main__":
    main()
