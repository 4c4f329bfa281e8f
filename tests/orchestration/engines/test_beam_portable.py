"""Beam as a distributed runner runs it: the portable runner with SDK workers in processes of
their own (Flink's, Spark's and Dataflow's way: every DoFn pickled, set up in another process,
nothing shared with the driver) writes the same clip table as the direct run, byte for byte.

The workers come from Beam's worker pool, started here as a separate process (a cluster's
workers are started by its runner); the job reaches it through pipeline options alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_files import music_like, write_audio
from engine_runs import curate_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker_pool():
    """Beam's external worker pool on a free port; it starts each SDK worker as `python -c ...`,
    so this venv's python comes first on its PATH. Stopped, with its workers, after the module."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pool = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        env=env,
        start_new_session=True,  # its own process group: the workers it starts are stopped with it
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("localhost", port), timeout=1).close()
            break
        except OSError:
            assert pool.poll() is None and time.monotonic() < deadline, "the Beam worker pool did not start"
            time.sleep(0.2)
    yield {"port": port, "pid": pool.pid}
    os.killpg(pool.pid, signal.SIGTERM)
    pool.wait(timeout=30)


def portable(port: int, temp_location: Path) -> list[str]:
    """The portable runner in this process (`embed`) handing bundles to the pool's workers;
    results come back through files under the temporary location, as from a cluster's."""
    return [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{port}",
        f"--temp_location={temp_location}",
    ]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def test_the_portable_runner_curates_in_other_processes_as_the_direct_run(worker_pool, tmp_path):
    corpus = tmp_path / "in"
    for index in range(3):
        write_audio(corpus / f"piece{index}.wav", music_like(5.0, rate=22050, seed=index), 22050)
    direct = curate_with(corpus, tmp_path / "direct", {"name": "beam", "workers": 2})
    distributed = curate_with(
        corpus,
        tmp_path / "portable",
        {
            "name": "beam",
            "beam": {"pipeline_options": portable(worker_pool["port"], tmp_path / "beam-temp")},
            "shared_paths": [str(tmp_path)],
        },
    )
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert direct.unit_workers == {here}  # the direct run's workers are threads of this process
    pids = {int(worker.rsplit(":", 1)[1]) for worker in distributed.unit_workers}
    assert pids and not pids & {os.getpid(), worker_pool["pid"]}
    assert not any((tmp_path / "beam-temp").iterdir())  # the results were read and removed
    parts = files(tmp_path / "direct")
    assert any(name.startswith("clips/") for name in parts) and files(tmp_path / "portable") == parts
