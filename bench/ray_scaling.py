"""Ray across nodes: curation on a local multi-node Ray cluster with 1, then 2 worker nodes.

A `ray.cluster_utils.Cluster` on this machine: a head with no CPUs (so no unit runs there)
and worker nodes of one CPU each, every node its own raylet with its own worker processes.
Each pair of runs curates the same corpus through the cluster's address, first on one worker
node, then with a second node added (`--runner.workers` = the worker nodes); the second node
is removed again before the next pair. The speed-up of a pair is the one-node run's work time
over the two-node run's (work time: the job's wall time without the engine's start and stop,
as a cluster's engine is already up). Target: >= 1.7x. Other jobs on a shared machine move
both runs of a pair, so the median and spread of --repeat pairs are printed with the load
average; on a machine with fewer free cores than worker nodes the speed-up cannot show.

    .venv/bin/python bench/ray_scaling.py [--pieces 16] [--repeat 3]
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
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder is first on sys.path: put the repository root there.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
from curation.demo.corpus import generate_demo_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench"
TARGET = 1.7


def curate_on(address: str, corpus: Path, output: Path, workers: int) -> float:
    """One `soundry curate` joining the cluster at `address`, in a process of its own (as a
    job submitted to a cluster); returns its work time. Its output is removed after."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    command = [
        sys.executable,
        "-m",
        "orchestration.cli",
        "curate",
        str(corpus),
        "--output",
        str(output),
        "--runner.name",
        "ray",
        "--runner.workers",
        str(workers),
        "--runner.ray.address",
        address,
        "--runner.shared_paths",
        "true",  # every node of this cluster is this machine
    ]
    try:
        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary = json.loads((output / "summary.json").read_text())
    finally:
        shutil.rmtree(output, ignore_errors=True)
    phases = summary["phases_s"]
    return summary["wall_s"] - phases["engine_start_s"] - phases["engine_stop_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=16, help="demo corpus pieces (30-45 s each)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (one node, two nodes)")
    args = parser.parse_args()

    corpus = CACHE / f"ray-scaling-{args.pieces}"
    generate_demo_corpus(corpus, n_pieces=args.pieces, seed=5, min_duration_s=30, max_duration_s=45)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a cluster private to this machine
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    scratch = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    ratios, loads = [], []
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        for pair in range(args.repeat):
            loads.append(os.getloadavg()[0])
            one = curate_on(cluster.address, corpus, scratch / "one", workers=1)
            second = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            two = curate_on(cluster.address, corpus, scratch / "two", workers=2)
            cluster.remove_node(second)
            loads.append(os.getloadavg()[0])
            ratios.append(one / two)
            print(f"pair {pair + 1}: 1 node {one:.1f} s, 2 nodes {two:.1f} s, speed-up {ratios[-1]:.2f}x")
            time.sleep(1)  # let the removed node's processes go before the next pair
    finally:
        cluster.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    ordered = sorted(ratios)
    print(
        f"ray, 1 -> 2 worker nodes of 1 CPU (head 0 CPUs), {args.pieces} pieces: speed-up "
        f"{statistics.median(ordered):.2f}x (min {ordered[0]:.2f}, max {ordered[-1]:.2f}, {len(ordered)} pairs; "
        f"target >= {TARGET}x; load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
