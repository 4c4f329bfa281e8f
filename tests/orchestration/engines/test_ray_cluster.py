"""Curation on a real multi-node Ray cluster on this machine: a head and one more node, joined by address."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from audio_files import music_like, write_audio
from engine_runs import curate_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # Two nodes of one CPU each, each its own raylet process with its own workers.
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


def test_units_run_on_both_nodes_and_the_clip_table_is_the_local_one(cluster, tmp_path):
    corpus = tmp_path / "in"
    for index in range(4):
        write_audio(corpus / f"piece{index}.wav", music_like(5.0, rate=22050, seed=index), 22050)
    local = curate_with(corpus, tmp_path / "local", {"name": "local", "workers": 1})
    on_cluster = curate_with(
        corpus,
        tmp_path / "cluster",
        {"name": "ray", "workers": 2, "ray": {"address": cluster.address}, "shared_paths": [str(tmp_path)]},
    )
    assert local.name == "local" and on_cluster.name == "ray"
    node_ids = {node.node_id for node in cluster.list_all_nodes()}
    assert len(node_ids) == 2 and on_cluster.unit_nodes == node_ids
    parts = sorted(p.name for p in (tmp_path / "local" / "clips").iterdir())
    assert parts and sorted(p.name for p in (tmp_path / "cluster" / "clips").iterdir()) == parts
    for name in parts:
        assert (tmp_path / "cluster" / "clips" / name).read_bytes() == (
            tmp_path / "local" / "clips" / name
        ).read_bytes()
    assert pq.read_table(tmp_path / "local" / "clips").num_rows >= 8


def test_a_job_without_an_address_starts_its_own_ray_beside_a_running_cluster(cluster, monkeypatch):
    """Ray's init joins a cluster running on this machine when given no address; the job's
    local Ray must be its own, with the CPUs it asked for."""
    import ray

    from orchestration.engines.config import RayOptions
    from orchestration.engines.ray_runner import RayRunner

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner = RayRunner(RayOptions(num_cpus=1), workers=1)
    try:
        runner.map(lambda item: {"item": item}, [1], lambda _: None)
        assert runner.unit_nodes and not runner.unit_nodes & {node.node_id for node in cluster.list_all_nodes()}
        assert ray.cluster_resources()["CPU"] == 1
    finally:
        runner.close()
