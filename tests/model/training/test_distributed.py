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
from pathlib import Path

import pytest
import torch
import yaml

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


def tiny_run(output, version: str, steps: int, **overrides) -> dict:
    return {
        "output": str(output),
        "model": "tiny",
        "sample_size": 8192,
        "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": steps,
        "checkpoint_every": 2,
        "log_every": 1,
        "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
        **overrides,
    }


def fsdp_runs(version: str, root: str) -> None:
    """Run by torchrun (2 ranks) from the test below, in one launch (starting processes is the slow
    part here) and one process group, which the runs use and leave open:
    - FSDP2 for 4 steps, sharded checkpoints, the one at step 2 written in the background, validated;
    - FSDP2 stopped at step 2 and resumed to 4;
    - DDP for 2 steps (whole checkpoint), resumed under FSDP2;
    - a sharded checkpoint one process wrote (1 rank -> 2) resumed, with every other block
      checkpointed and the blocks compiled;
    - DDP on a model without timing conditioning (its seconds conditioners unbuilt), validated;
    - which checkpoint the ranks resume from when each sees other folders."""
    import torch.distributed as dist

    from model.training.config import TrainConfig
    from model.training.distributed import Distributed
    from model.training.resume import resume_folder
    from model.training.train import train

    def run(name: str, steps: int, parallel: str, **overrides) -> dict:
        config = tiny_run(f"{root}/{name}", version, steps, parallel=parallel, grad_accum=2, **overrides)
        return train(TrainConfig.model_validate(config))

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    # Validation (on the train split: this version has no other) must not change the training it watches.
    validation = {"every": 2, "split": "train", "batches": 1, "times": [0.5]}
    summaries = {"whole": run("fsdp", 4, "fsdp", async_checkpoints=True, validation=validation)}
    run("fsdp-parts", 2, "fsdp")
    summaries["parts"] = run("fsdp-parts", 4, "fsdp")
    run("ddp-then-fsdp", 2, "ddp")
    summaries["crossed"] = run("ddp-then-fsdp", 4, "fsdp")
    options = {"activation_checkpointing": 2, "compile": "on", "compile_backend": "aot_eager"}
    summaries["one-then-two"] = run("one-then-two", 4, "fsdp", **options)
    summaries["no-timing"] = run("no-timing", 2, "ddp", model=f"{root}/no-timing.json", validation=validation)
    # Rank 1 sees a newer checkpoint than rank 0 (a listing that differs between ranks): rank 0's choice holds.
    chosen = resume_folder(Path(root) / f"view-{rank}", Distributed(rank, 2, rank, torch.device("cpu")))
    names: list = [None, None]
    dist.all_gather_object(names, chosen.name)
    summaries["chosen"] = names
    if rank == 0:
        print(json.dumps(summaries))
    dist.destroy_process_group()


def checkpoint(run, step: int, ema: bool = False) -> dict:
    from model.checkpoint import checkpoint_tensors

    return checkpoint_tensors(run / "checkpoints" / f"step-{step:08d}", ema=ema)[0]


def test_fsdp_sharded_checkpoints_resume_exactly_across_world_sizes_and_formats(tmp_path, audio_version):
    from model.config import ModelConfig
    from model.sao.config import to_sao_model_config
    from model.training.config import TrainConfig
    from model.training.state import load_training_state
    from model.training.train import train

    # Before the launch: one process writes a sharded checkpoint (FSDP2's format, whole tensors)...
    assert train(
        TrainConfig.model_validate(tiny_run(tmp_path / "one-then-two", audio_version, 2, parallel="fsdp", grad_accum=2))
    )
    # ...a model without timing conditioning is described, and the ranks' views of a run folder differ.
    untimed = ModelConfig(conditioning={"cross_attention_ids": ["prompt"], "global_ids": []})
    (tmp_path / "no-timing.json").write_text(json.dumps(to_sao_model_config(untimed)))
    for rank, steps in ((0, [2]), (1, [2, 4])):
        for step in steps:
            (tmp_path / f"view-{rank}" / f"step-{step:08d}").mkdir(parents=True)
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
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = summary_of(done.stdout)
    assert summaries.pop("chosen") == ["step-00000002", "step-00000002"]
    assert all(s["world_size"] == 2 and s["replicas_agree"] for s in summaries.values())
    assert [s["step"] for s in summaries.values()] == [4, 4, 4, 4, 2]
    assert "valid_loss" in summaries["whole"] and "valid_loss" in summaries["no-timing"]
    assert (tmp_path / "fsdp" / "checkpoints" / "step-00000004" / "sharded" / ".metadata").is_file()
    assert not (tmp_path / "fsdp" / "checkpoints" / "step-00000004" / "model.safetensors").exists()
    for ema in (False, True):
        whole, parts = checkpoint(tmp_path / "fsdp", 4, ema), checkpoint(tmp_path / "fsdp-parts", 4, ema)
        crossed = checkpoint(tmp_path / "ddp-then-fsdp", 4, ema)
        assert whole.keys() == parts.keys() == crossed.keys()
        # Stopped and resumed under FSDP2 (sharded): the run that never stopped, exactly.
        different = [k for k in whole if not torch.equal(whole[k], parts[k])]
        assert not different, f"ema={ema}: {different[:3]} differ after resuming"
        # Two steps of DDP (a whole checkpoint), then FSDP2 from it: the same training as FSDP2 throughout.
        far = [k for k in whole if not torch.allclose(whole[k], crossed[k], rtol=1e-5, atol=1e-6)]
        assert not far, f"ema={ema}: {far[:3]} differ between DDP-then-FSDP2 and FSDP2"
    # The step-2 checkpoint written in the background is the one written in the foreground.
    background, foreground = checkpoint(tmp_path / "fsdp", 2), checkpoint(tmp_path / "fsdp-parts", 2)
    assert all(torch.equal(background[k], foreground[k]) for k in foreground)
    start = checkpoint(tmp_path / "fsdp", 2)
    assert any(not torch.equal(start[k], whole[k]) for k in whole if k.startswith("dit.blocks."))  # it trained
    one_then_two = load_training_state(tmp_path / "one-then-two" / "checkpoints" / "step-00000004")
    assert one_then_two["step"] == 4 and len(one_then_two["loader"]) == 2  # written by the 2 ranks it resumed on
    assert not any(k.startswith("conditioners.seconds_") for k in checkpoint(tmp_path / "no-timing", 2))

    # `soundry export` consolidates the sharded checkpoint into SAO's files: its EMA weights, whole.
    from safetensors.torch import load_file

    from model.sao.checkpoint import to_sao_name
    from model.sao.export import export_sao

    export_sao(tmp_path / "fsdp" / "checkpoints" / "step-00000004", tmp_path / "exported")
    exported = load_file(str(tmp_path / "exported" / "model.safetensors"))
    averaged = checkpoint(tmp_path / "fsdp", 4, ema=True)
    assert averaged and all(torch.equal(exported[to_sao_name(k)], v) for k, v in averaged.items())

    # The sharded FSDP2 checkpoint (2 ranks) resumes in one process (2 -> 1), AdamW going on from step 4.
    shutil.copytree(tmp_path / "fsdp", tmp_path / "one")
    resumed = train(
        TrainConfig.model_validate(tiny_run(tmp_path / "one", audio_version, 5, parallel="fsdp", grad_accum=2))
    )
    assert resumed["step"] == 5 and resumed["world_size"] == 1
    from model.weights import read_sharded_tensors

    moments = read_sharded_tensors(tmp_path / "one" / "checkpoints" / "step-00000005" / "sharded", "optimizer.state.")
    assert {v.item() for k, v in moments.items() if k.endswith(".step")} == {5.0}


def preempted_runs(version: str, root: str, steps: str) -> None:
    """Run by torchrun (2 ranks) from the test below: the preempted run resumed to `steps`, and a
    run that was never stopped, to the same step."""
    import torch.distributed as dist

    from model.training.config import TrainConfig
    from model.training.train import train

    dist.init_process_group("gloo")
    for name in ("preempted", "reference"):
        train(TrainConfig.model_validate(preemptible(f"{root}/{name}", version, int(steps))))
    dist.destroy_process_group()


def preemptible(output, version: str, steps: int) -> dict:
    return tiny_run(output, version, steps, parallel="fsdp", checkpoint_every=10_000)


def test_sigterm_to_torchrun_leaves_a_sharded_checkpoint_that_resumes_exactly(tmp_path, audio_version):
    """SIGTERM to torchrun, which forwards it to both ranks: they agree to stop, write a sharded
    checkpoint together and exit; the resumed run then ends with exactly the weights of a run
    that was never stopped."""
    config = tmp_path / "preempted.yaml"
    config.write_text(yaml.safe_dump(preemptible(tmp_path / "preempted", audio_version, 10_000)))
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    agent = subprocess.Popen(
        [sys.executable, *launcher, "-m", "orchestration.cli", "train", "-c", str(config)],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = tmp_path / "preempted"
    deadline = time.monotonic() + 300
    while not ((run / "metrics.jsonl").exists() and len(losses(run)) >= 2):
        assert agent.poll() is None and time.monotonic() < deadline, agent.stderr.read()[-3000:]
        time.sleep(0.2)
    agent.send_signal(signal.SIGTERM)
    _, stderr = agent.communicate(timeout=300)
    stopped = json.loads((run / "summary.json").read_text())
    assert stopped["stopped_early"] and stopped["world_size"] == 2, stderr[-3000:]
    step = stopped["step"]
    assert (run / "checkpoints" / f"step-{step:08d}" / "sharded" / ".metadata").is_file()
    assert "SIGTERM received: checkpoint written" in stderr

    done = subprocess.run(
        [
            sys.executable,
            *launcher[:-1],
            str(free_port()),
            __file__,
            "preempted",
            audio_version,
            str(tmp_path),
            str(step + 2),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, step + 3))  # it went on from the checkpoint, not from the start
    for ema in (False, True):
        resumed, reference = checkpoint(run, step + 2, ema), checkpoint(tmp_path / "reference", step + 2, ema)
        different = [k for k in reference if not torch.equal(resumed[k], reference[k])]
        assert not different, f"ema={ema}: {different[:3]} differ from the run that was never stopped"


if __name__ == "__main__":
    if sys.argv[1] == "preempted":
        preempted_runs(*sys.argv[2:])
    else:
        fsdp_runs(*sys.argv[1:])
