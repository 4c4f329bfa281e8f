"""Real torch.distributed processes on CPU (gloo): torchrun with 2 processes, two torchrun
"nodes" meeting on 127.0.0.1, and SIGTERM preemption."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

pytestmark = pytest.mark.slow


def write_config(path, output, version, **overrides) -> str:
    config = {
        "output": str(output), "model": "tiny", "sample_size": 8192, "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": 6, "checkpoint_every": 100, "log_every": 1, "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1}, **overrides,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict:
    # One thread per process: two ranks share two cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def summary_of(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def test_two_ddp_processes_follow_the_loss_curve_of_one(tmp_path, audio_version):
    one = write_config(tmp_path / "one.yaml", tmp_path / "one", audio_version, data={
        "version": audio_version, "batch_size": 4, "workers": 0, "shuffle_buffer": 4})
    two = write_config(tmp_path / "two.yaml", tmp_path / "two", audio_version)
    subprocess.run([sys.executable, "-m", "orchestration.cli", "train", "-c", one], check=True, env=environment(),
                   capture_output=True, timeout=300)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port()), "-m", "orchestration.cli", "train", "-c", two],
                          env=environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = summary_of(done.stdout)
    assert summary["world_size"] == 2 and summary["replicas_agree"] and summary["step"] == 6
    # Same global batch (4), different examples and noise per step: the curves agree in level.
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 6
    assert abs(sum(a) - sum(b)) / sum(a) < 0.3, (a, b)


def test_two_torchrun_nodes_on_localhost_agree_on_the_weights(tmp_path, audio_version):
    config = write_config(tmp_path / "nodes.yaml", tmp_path / "nodes", audio_version, max_steps=3)
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank),
                               "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
                               "-m", "orchestration.cli", "train", "-c", config],
                              env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-3000:] + outputs[1][1][-3000:]
    summary = summary_of(outputs[0][0])
    assert summary["world_size"] == 2 and summary["replicas_agree"] and summary["step"] == 3


def test_sigterm_writes_a_checkpoint_that_resumes(tmp_path, audio_version):
    run = tmp_path / "preempted"
    config = write_config(tmp_path / "long.yaml", run, audio_version, max_steps=10_000)
    process = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "train", "-c", config], env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").exists() and len(losses(run)) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    stopped = summary_of(stdout)
    assert stopped["stopped_early"] and 2 <= stopped["step"] < 10_000
    assert (run / "checkpoints" / f"step-{stopped['step']:08d}" / "training_state.pt").exists()
    resume = write_config(tmp_path / "resume.yaml", run, audio_version, max_steps=stopped["step"] + 2)
    done = subprocess.run([sys.executable, "-m", "orchestration.cli", "train", "-c", resume], env=environment(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_of(done.stdout)["step"] == stopped["step"] + 2
    assert "resumed from" in done.stderr
