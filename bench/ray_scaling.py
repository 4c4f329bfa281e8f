"""Ray across nodes: curation on a local multi-node Ray cluster with 1, then 2 worker nodes.

A `ray.cluster_utils.Cluster` on this machine: a head with no CPUs (so no unit runs there)
and worker nodes of one CPU each, every node its own raylet with its own worker processes.
Each pair of runs curates the same corpus through the cluster's address on one worker node and
with a second node added (`--runner.workers` = the worker nodes), the one-node run first in
every other pair; the second node is removed after its run. Two speed-ups per pair, one-node
time over two-node time: of the units phase (the part spread over the nodes) and of the job's
whole work (its wall time without the engine's start and stop, as a cluster's engine is
already up: the plan and the duplicate search included). Target: >= 1.7x. Other jobs on a
shared machine move both runs of a pair, so the median and spread of --repeat pairs are printed
with the load average; on a machine with fewer free cores than worker nodes it cannot show.

    .venv/bin/python bench/ray_scaling.py [--pieces 32] [--repeat 3]
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


def curate_on(address: str, corpus: Path, output: Path, workers: int) -> dict[str, float]:
    """One `soundry curate` joining the cluster at `address`, in a process of its own (as a
    job submitted to a cluster); returns its phases' seconds and its work time. Its output is
    removed after."""
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
    return {**phases, "work_s": summary["wall_s"] - phases["engine_start_s"] - phases["engine_stop_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=32, help="demo corpus pieces (30-45 s each)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (one node, two nodes)")
    args = parser.parse_args()

    corpus = CACHE / f"ray-scaling-{args.pieces}"
    generate_demo_corpus(corpus, n_pieces=args.pieces, seed=5, min_duration_s=30, max_duration_s=45)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a cluster private to this machine
    # The cluster's files (and the "current cluster" note a plain ray.init() on this machine
    # would join) in a folder of its own, so that other jobs here never see it.
    ray_files = tempfile.mkdtemp(prefix="rs-", dir="/tmp")  # short: Ray's socket paths live under it
    os.environ["RAY_TMPDIR"] = ray_files
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    scratch = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    ratios: dict[str, list[float]] = {"units_s": [], "work_s": []}
    loads = []
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        for pair in range(args.repeat):
            loads.append(os.getloadavg()[0])
            # Which run goes first alternates, so a load that grows or falls moves both sides alike.
            if pair % 2 == 0:
                one = curate_on(cluster.address, corpus, scratch / "one", workers=1)
            second = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            two = curate_on(cluster.address, corpus, scratch / "two", workers=2)
            cluster.remove_node(second)
            if pair % 2 == 1:
                time.sleep(1)  # let the removed node's processes go first
                one = curate_on(cluster.address, corpus, scratch / "one", workers=1)
            loads.append(os.getloadavg()[0])
            for phase, found in ratios.items():
                found.append(one[phase] / two[phase])
            print(
                f"pair {pair + 1}: units {one['units_s']:.1f} s on 1 node, {two['units_s']:.1f} s on 2 "
                f"({ratios['units_s'][-1]:.2f}x); work {one['work_s']:.1f} s, {two['work_s']:.1f} s "
                f"({ratios['work_s'][-1]:.2f}x; plan {one['plan_s']:.1f} s, {two['plan_s']:.1f} s; "
                f"dedup {one['dedup_s']:.1f} s, {two['dedup_s']:.1f} s)"
            )
    finally:
        cluster.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(ray_files, ignore_errors=True)
    print(
        f"ray, 1 -> 2 worker nodes of 1 CPU (head 0 CPUs), {args.pieces} pieces, {len(loads) // 2} pairs, "
        f"load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores; target >= {TARGET}x"
    )
    for phase, title in (("units_s", "the units (the part that spreads)"), ("work_s", "the whole job's work")):
        ordered = sorted(ratios[phase])
        print(f"  speed-up of {title}: {statistics.median(ordered):.2f}x (min {ordered[0]:.2f}, max {ordered[-1]:.2f})")


if __name__ == "__main__":
    main()
