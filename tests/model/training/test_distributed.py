"""Real torch.distributed processes on CPU (gloo): torchrun with 2 processes (DDP and FSDP2),
two torchrun "nodes" meeting on 127.0.0.1, and SIGTERM preemption."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def write_config(path, output, version, **overrides) -> str:
    config = {
        "output": str(output),
        "model": "tiny",
        "sample_size": 8192,
        "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": 6,
        "checkpoint_every": 100,
        "log_every": 1,
        "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
        **overrides,
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
    return json.loads(stdout[stdout.index("{") :])


def test_two_ddp_processes_follow_the_loss_curve_of_one(tmp_path, audio_version):
    one = write_config(
        tmp_path / "one.yaml",
        tmp_path / "one",
        audio_version,
        data={"version": audio_version, "batch_size": 4, "workers": 0, "shuffle_buffer": 4},
    )
    two = write_config(tmp_path / "two.yaml", tmp_path / "two", audio_version)
    subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "train", "-c", one],
        check=True,
        env=environment(),
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "-m",
            "orchestration.cli",
            "train",
            "-c",
            two,
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
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
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--node_rank",
                str(rank),
                "--nproc_per_node",
                "1",
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                "-m",
                "orchestration.cli",
                "train",
                "-c",
                config,
            ],
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-3000:] + outputs[1][1][-3000:]
    summary = summary_of(outputs[0][0])
    assert summary["world_size"] == 2 and summary["replicas_agree"] and summary["step"] == 3


def test_sigterm_writes_a_checkpoint_that_resumes(tmp_path, audio_version):
    run = tmp_path / "preempted"
    config = write_config(tmp_path / "long.yaml", run, audio_version, max_steps=10_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "train", "-c", config],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "train", "-c", resume],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_of(done.stdout)["step"] == stopped["step"] + 2
    assert "resumed from" in done.stderr


def fsdp_runs(version: str, root: str) -> None:
    """Run by torchrun (2 ranks) from the test below: FSDP2 for 4 steps; FSDP2 stopped at step 2
    and resumed; DDP for 2 steps, resumed under FSDP2. One launch (starting processes is the
    slow part here) and one process group, which the runs use and leave open."""
    import torch.distributed as dist

    from model.training.config import TrainConfig
    from model.training.train import train

    def run(name: str, steps: int, parallel: str) -> dict:
        return train(
            TrainConfig.model_validate(
                {
                    "output": f"{root}/{name}",
                    "model": "tiny",
                    "sample_size": 8192,
                    "device": "cpu",
                    "parallel": parallel,
                    "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
                    "grad_accum": 2,
                    "max_steps": steps,
                    "checkpoint_every": 2,
                    "log_every": 1,
                    "schedule": {"warmup_steps": 2},
                    "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
                }
            )
        )

    dist.init_process_group("gloo")
    summaries = {"whole": run("fsdp", 4, "fsdp")}
    run("fsdp-parts", 2, "fsdp")
    summaries["parts"] = run("fsdp-parts", 4, "fsdp")
    run("ddp-then-fsdp", 2, "ddp")
    summaries["crossed"] = run("ddp-then-fsdp", 4, "fsdp")
    if dist.get_rank() == 0:
        print(json.dumps(summaries))
    dist.destroy_process_group()


def checkpoint(run, step: int, name: str) -> dict:
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / name))


def test_fsdp_trains_resumes_exactly_and_its_checkpoints_serve_ddp_and_one_process(tmp_path, audio_version):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            __file__,
            audio_version,
            str(tmp_path),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = summary_of(done.stdout)
    assert all(s["world_size"] == 2 and s["step"] == 4 and s["replicas_agree"] for s in summaries.values())
    for name in ("model.safetensors", "ema.safetensors"):
        whole, parts = checkpoint(tmp_path / "fsdp", 4, name), checkpoint(tmp_path / "fsdp-parts", 4, name)
        crossed = checkpoint(tmp_path / "ddp-then-fsdp", 4, name)
        assert whole.keys() == parts.keys() == crossed.keys()
        # Stopped and resumed under FSDP2: the run that never stopped, exactly.
        different = [k for k in whole if not torch.equal(whole[k], parts[k])]
        assert not different, f"{name}: {different[:3]} differ after resuming"
        # Two steps of DDP, then FSDP2 from DDP's checkpoint: the same training as FSDP2 throughout.
        far = [k for k in whole if not torch.allclose(whole[k], crossed[k], rtol=1e-5, atol=1e-6)]
        assert not far, f"{name}: {far[:3]} differ between DDP-then-FSDP2 and FSDP2"
    start = checkpoint(tmp_path / "fsdp", 2, "model.safetensors")
    assert any(not torch.equal(start[k], whole[k]) for k in whole if k.startswith("dit.blocks."))  # it trained
    # FSDP2's checkpoint resumes in one process: whole tensors, optimizer state by parameter name.
    from model.training.config import TrainConfig
    from model.training.state import load_training_state
    from model.training.train import train

    shutil.copytree(tmp_path / "fsdp", tmp_path / "one")
    resumed = train(
        TrainConfig.model_validate(
            {
                "output": str(tmp_path / "one"),
                "model": "tiny",
                "sample_size": 8192,
                "device": "cpu",
                "data": {"version": audio_version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
                "max_steps": 5,
                "checkpoint_every": 5,
                "log_every": 1,
                "schedule": {"warmup_steps": 2},
                "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
            }
        )
    )
    assert resumed["step"] == 5 and resumed["world_size"] == 1
    optimizer = load_training_state(tmp_path / "one" / "checkpoints" / "step-00000005")["optimizer"]
    assert {state["step"].item() for state in optimizer["state"].values()} == {5.0}  # AdamW went on from step 4


if __name__ == "__main__":
    fsdp_runs(*sys.argv[1:])
