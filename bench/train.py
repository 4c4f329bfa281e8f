"""Training throughput of the DiT through the real loop (model/training/train.py), against floors measured
in the same run (machines here are noisy; ratios measured in one run mean most).

1. CPU, per preset (tiny, small), with activation checkpointing off and on (every block): latent
   frames/s of `train()` on a published version with latents (synthesized tones -> curate ->
   publish -> `encode` with the preset's VAE, random weights), over the steps after the first two,
   against the floor: the same model's bare step with the same checkpointing (diffusion loss on
   random latents of the same shape with the real batch's prompts, backward, AdamW), timed in the
   same process before and after the loop (the faster counts). The ratio loop/floor says what the
   loader, clipping, scheduler, EMA and logging cost; loop off / loop on what checkpointing costs.
2. Scaling: the tiny loop in 1 and 2 processes (torchrun, gloo, OMP_NUM_THREADS=1 each, the same
   batch per rank): global frames/s of 2 processes over 1, under DDP and under FSDP2.
3. --gpu (the size section; sao-1.0 on CUDA): the bf16 matmul peak measured here; the memory each
   example adds to a bare training step with checkpointing off and on (bench/train_memory.py), and
   the largest batch that fits each way; then the loop on sao-1.0 (its recipe: bf16, blocks
   compiled, checkpointing on; and once with checkpointing off): samples/s and the loop's DiT
   TFLOP/s per device as a fraction of the measured peak (target >= 0.4). Without CUDA the same
   code runs on the CPU with tiny (`--gpu-device cpu` forces it): a check of the path, not a
   measurement; its memory figures are peak resident memory of a process per probe, within a
   budget (--cpu-budget-gb) instead of the GPU's out-of-memory.

sao-1.0 on the CPU: its training state alone (fp32 weights, gradients, AdamW moments and EMA,
20 bytes a trained parameter) is about 21 GB; the bench refuses a preset whose estimate exceeds
the memory available.

    .venv/bin/python bench/train.py [--cpu-presets tiny,small] [--steps 6] [--batch 2] [--no-scaling]
        [--gpu] [--gpu-preset sao-1.0] [--gpu-batch 8] [--max-batch 256] [--no-compile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and bench/model.py would shadow the
# `model` package: put the repository root there instead.
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

from bench.model import TARGET, matmul_peak_tflops  # noqa: E402
from bench.train_memory import Probes, TrainingStep, largest_batch  # noqa: E402
from model.config import preset  # noqa: E402

CACHE = ROOT / "build" / "bench" / "train"
WARMUP_STEPS = 2  # the first steps pay for allocation and the loader's start
BYTES_PER_TRAINED_PARAMETER = 20  # fp32 weight, gradient, two AdamW moments, EMA


def latent_version(name: str, device: str = "cpu") -> tuple[str, str]:
    """A small published version with the preset VAE's latents, and that VAE's checkpoint (cached).
    Clips are short (2 s, padded to the model's length by the loader): the DiT's work per example
    is the model's latent length whatever the clip's."""
    from model.checkpoint import save_checkpoint
    from model.vae import AudioVAE
    from orchestration.configs.jobs import CurateJob, EncodeJob, ShardJob
    from orchestration.jobs.curate import curate
    from orchestration.jobs.encode import encode_version
    from orchestration.jobs.shard import publish_version

    base = CACHE / name
    latents, vae = base / "versions" / "latents", base / "vae"
    if (latents / "manifest.json").exists() and (vae / "config.json").exists():
        return str(latents), str(vae)
    shutil.rmtree(base, ignore_errors=True)
    rate, seconds = 44100, 4.0
    t = np.arange(int(seconds * rate)) / rate
    (base / "raw").mkdir(parents=True)
    for i in range(8):
        tone = np.sin(2 * np.pi * 110 * (i + 1) * t) * 0.3
        soundfile.write(base / "raw" / f"tone-{i}.wav", np.stack([tone, tone * 0.8], 1).astype(np.float32), rate)
    runner = {"name": "local", "workers": 1}
    curate(
        CurateJob.model_validate(
            {
                "inputs": [{"path": str(base / "raw"), "license": "CC0-1.0"}],
                "output": str(base / "curated"),
                "segment": {"window_s": 2.0, "min_clip_s": 1.0},
                "runner": runner,
            }
        )
    )
    publish_version(
        ShardJob.model_validate(
            {
                "clips": str(base / "curated"),
                "root": str(base / "versions"),
                "version": "audio",
                "splits": {"fractions": {"train": 1.0}},
                "shards": {"min_shards": 4},
                "runner": runner,
            }
        )
    )
    config = preset(name)
    torch.manual_seed(0)
    save_checkpoint(vae, AudioVAE(config.vae, config.audio_channels), config)
    encode_version(
        EncodeJob.model_validate(
            {
                "source": str(base / "versions" / "audio"),
                "vae": str(vae),
                "root": str(base / "versions"),
                "version": "latents",
                "device": device,
                "runner": runner,
            }
        )
    )
    return str(latents), str(vae)


def loop_config(name: str, version: str, vae: str, output: Path, batch: int, steps: int, device: str, **overrides):
    """The loop's config: the preset's recipe under these settings (as `soundry train` resolves it)."""
    from model.training.recipes import with_recipe

    return with_recipe(
        {
            "output": str(output),
            "model": name,
            "vae": vae,
            "device": device,
            "data": {"version": version, "batch_size": batch, "workers": 1, "shuffle_buffer": 8},
            "max_steps": WARMUP_STEPS + steps,
            "log_every": 1,
            "checkpoint_every": 10**9,
            "keep_checkpoints": 1,
            "demo": {"prompts": ["Drums"], "seconds": 0.1, "steps": 1, "cfg_scales": [3.0]},
            "validation": {"every": 0},
            **overrides,
        }
    )


def loop_rates(run: Path) -> dict[str, float]:
    """Median samples/s and latent frames/s (all ranks together) of the steps after the warm-up,
    and the best step's frames/s (the least disturbed by other work on the machine)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "loss" in row][WARMUP_STEPS:]
    keys = ("samples_per_s", "latent_frames_per_s", "tflops_per_device")
    rates = {key: statistics.median(row[key] for row in rows) for key in keys}
    return {**rates, "best_latent_frames_per_s": max(row["latent_frames_per_s"] for row in rows)}


def floor_rate(config, steps: int) -> float:
    """Latent frames/s of the bare step: the loop's model, the loop's batches read beforehand (their
    prompts and timing: the text encoder's work depends on the prompts) with random latents of
    their shape, loss, backward, AdamW; nothing else."""
    from model.training.data import endless, loader_config, to_device
    from model.training.train import build_model
    from shards.loader.batch import TrainingBatch
    from shards.loader.loader import make_loader

    device = torch.device("cuda" if config.device == "cuda" else "cpu")
    model = build_model(config).to(device).train()
    model.dit.set_activation_checkpointing(config.activation_checkpointing)
    optimizer = torch.optim.AdamW(
        model.trainable_parameters().values(),
        lr=config.optimizer.lr,
        betas=config.optimizer.betas,
        weight_decay=config.optimizer.weight_decay,
        eps=config.optimizer.eps,
    )
    data = loader_config(config.data, model.config)
    batches = endless(make_loader(config.data.version, data, 0, 1, seed=config.seed))
    batches = [to_device(next(batches), device) for _ in range(WARMUP_STEPS + steps)]
    for batch in batches:
        batch["latents"] = torch.randn_like(batch["latents"])
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    generator = torch.Generator(device).manual_seed(0)

    def step(batch: TrainingBatch) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(batch, generator)
        loss.backward()
        optimizer.step()

    rates = []
    for i, batch in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= WARMUP_STEPS:
            rates.append(batch["latents"].shape[0] * batch["latents"].shape[-1] / (time.perf_counter() - started))
    return statistics.median(rates)


def estimate_gb(name: str) -> float:
    from model.latent_diffusion import LatentDiffusion

    with torch.device("meta"):
        model = LatentDiffusion(preset(name))
    trained = sum(p.numel() for p in model.trainable_parameters().values())
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return (trained * BYTES_PER_TRAINED_PARAMETER + frozen * 4) / 1e9


def available_gb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable")) / 1e9


def cpu_case(name: str, batch: int, steps: int, threads: int) -> dict:
    """One preset's loop against its floor, with activation checkpointing off and on (run in its own
    process, see main)."""
    from model.training.train import train

    torch.set_num_threads(threads)
    version, vae = latent_version(name)
    frames = preset(name).latent_length
    row = {"preset": name, "batch": batch, "frames": frames, "threads": threads}
    for checkpointing in (0, 1):
        run = CACHE / name / f"run-ckpt{checkpointing}"
        shutil.rmtree(run, ignore_errors=True)
        config = loop_config(name, version, vae, run, batch, steps, "cpu", activation_checkpointing=checkpointing)
        floor_before = floor_rate(config, steps)
        train(config)
        loop = loop_rates(run)
        floor_after = floor_rate(config, steps)
        floor = max(floor_before, floor_after)
        row[f"ckpt{checkpointing}"] = {
            **loop,
            "floor_frames_per_s": floor,
            "floor_runs": [floor_before, floor_after],
            "ratio": loop["latent_frames_per_s"] / floor,
        }
    row["checkpointing_slowdown"] = row["ckpt0"]["latent_frames_per_s"] / row["ckpt1"]["latent_frames_per_s"]
    return row


def scaling_worker(name: str, batch: int, steps: int, parallel: str, output: str) -> None:
    """Under torchrun: the loop with this process's one thread; rank 0 writes the metrics."""
    from model.training.train import train

    torch.set_num_threads(1)
    version, vae = latent_version(name)
    train(loop_config(name, version, vae, Path(output), batch, steps, "cpu", parallel=parallel))


def scaling(name: str, batch: int, steps: int) -> list[dict]:
    latent_version(name)  # made once, before processes race to make it
    rows, base, best = [], None, None
    for processes, parallel in ((1, "ddp"), (2, "ddp"), (2, "fsdp")):
        run = CACHE / name / f"scale-{processes}-{parallel}"
        shutil.rmtree(run, ignore_errors=True)
        port = 29500 + os.getpid() % 1000
        subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                str(processes),
                "--master_port",
                str(port),
                __file__,
                "--scale-worker",
                f"{name}:{batch}:{steps}:{parallel}:{run}",
            ],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rates = loop_rates(run)
        base, best = base or rates["latent_frames_per_s"], best or rates["best_latent_frames_per_s"]
        row = {
            "preset": name,
            "processes": processes,
            "parallel": parallel,
            "batch_per_rank": batch,
            **rates,
            "speedup": rates["latent_frames_per_s"] / base,
            "best_speedup": rates["best_latent_frames_per_s"] / best,
        }
        print(
            f"scaling {name} {processes} process(es) {parallel:4s} batch {batch}/rank, 1 thread each: median "
            f"{rates['latent_frames_per_s']:7.1f} latent frames/s ({row['speedup']:.2f}x one process), best step "
            f"{rates['best_latent_frames_per_s']:7.1f} ({row['best_speedup']:.2f}x)",
            flush=True,
        )
        rows.append(row)
    return rows


def size(
    name: str | None, device_name: str, batch: int, steps: int, max_batch: int, budget_gb: float, compile_on: bool
) -> dict:
    """The size section (see the docstring): sao-1.0 on CUDA, or the same code with tiny on the CPU."""
    from model.training.train import train

    cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    name = name or ("sao-1.0" if cuda else "tiny")
    if not cuda:
        print(f"size: no GPU; the same code on the CPU with {name}, to check it (figures mean little)", flush=True)
    peak = matmul_peak_tflops(device, torch.bfloat16, n=8192 if cuda else 1024)
    label = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"{label}: bf16 matmul peak measured {peak:.3g} TFLOP/s", flush=True)
    frames = preset(name).latent_length
    row: dict = {"preset": name, "device": device.type, "frames": frames, "peak_tflops": peak}
    budget = int(budget_gb * 1e9)
    shared = TrainingStep(name, device) if cuda else None  # one model for every CUDA probe
    for checkpointing in (0, 1):
        probes = Probes(name, device, checkpointing, budget, shared)
        each = probes.per_example()
        largest = largest_batch(probes.fits, max_batch)
        row[f"memory_per_example_gb_ckpt{checkpointing}"] = None if each is None else each / 1e9
        row[f"largest_batch_ckpt{checkpointing}"] = largest
        shown = "out of memory at batch 1 or 2" if each is None else f"{each / 2**30:.3g} GiB"
        where = "" if cuda else f" within a {budget_gb:g} GB budget"
        print(
            f"{device.type} {name} bare step, checkpointing {'on (every block)' if checkpointing else 'off'}: "
            f"{shown} per example of {frames} latent frames; largest batch{where} {largest}"
            f"{' (the search limit)' if largest == max_batch else ''}",
            flush=True,
        )
    if cuda:
        del shared, probes
        torch.cuda.empty_cache()
    version, vae = latent_version(name, device.type)
    for checkpointing in (1, 0):
        run = CACHE / name / f"size-run-ckpt{checkpointing}"
        shutil.rmtree(run, ignore_errors=True)
        overrides = {"precision": "bf16", "activation_checkpointing": checkpointing, "peak_tflops": peak}
        overrides["compile"] = "on" if compile_on and cuda else "off"
        train(loop_config(name, version, vae, run, batch, steps, device.type, **overrides))
        rates = loop_rates(run)
        ratio = rates["tflops_per_device"] / peak
        row[f"loop_ckpt{checkpointing}"] = {**rates, "batch": batch, "ratio": ratio, "compiled": overrides["compile"]}
        verdict = "meets" if ratio >= TARGET else "below"
        print(
            f"{device.type} {name} training loop bf16 batch {batch} x {frames} frames, checkpointing "
            f"{'on' if checkpointing else 'off'}, compile {overrides['compile']}: {rates['samples_per_s']:.2f} "
            f"samples/s, {rates['tflops_per_device']:.3g} TFLOP/s (the DiT's training FLOPs) = {ratio:.2f} of the "
            f"measured matmul peak ({verdict} target {TARGET})",
            flush=True,
        )
        if cuda:
            torch.cuda.empty_cache()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpu-presets",
        default="tiny,small",
        help="presets measured on the CPU (sao-1.0 is refused where it does not fit)",
    )
    parser.add_argument("--batch", type=int, default=2, help="examples per rank per step on the CPU")
    parser.add_argument(
        "--steps", type=int, default=6, help="measured steps (after 2 warm-up steps) per loop and floor"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the per-preset CPU cases (on a shared 2-core "
        "machine a second thread mostly waits: tiny ran 5x slower with 2 than with 1)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1 -> 2 process measurement")
    parser.add_argument(
        "--scaling-steps", type=int, default=20, help="measured steps of each scaling run (tiny steps are short)"
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="the size section: sao-1.0 in bf16 on CUDA (without CUDA: the same code with tiny on the CPU)",
    )
    parser.add_argument(
        "--gpu-device", default="auto", choices=["auto", "cuda", "cpu"], help="where the size section runs"
    )
    parser.add_argument("--gpu-preset", help="preset of the size section (default: sao-1.0 on CUDA, tiny on the CPU)")
    parser.add_argument(
        "--gpu-batch", type=int, default=8, help="examples per step of the size section's loop (the CPU stand-in: 2)"
    )
    parser.add_argument(
        "--max-batch", type=int, default=256, help="where the largest-batch search stops (the CPU stand-in: 4)"
    )
    parser.add_argument(
        "--cpu-budget-gb", type=float, default=1.0, help="the CPU stand-in's memory budget per step (fits or not)"
    )
    parser.add_argument("--no-compile", action="store_true", help="the size section's loop without torch.compile")
    parser.add_argument("--json", help="write all rows to this file")
    args = parser.parse_args()
    if args.case:
        name, batch, steps, threads = args.case.split(":")
        print(json.dumps(cpu_case(name, int(batch), int(steps), int(threads))))
        return 0
    if args.scale_worker:
        name, batch, steps, parallel, output = args.scale_worker.split(":", 4)
        scaling_worker(name, int(batch), int(steps), parallel, output)
        return 0
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work on this machine slows the CPU "
        f"figures)",
        flush=True,
    )
    rows: dict[str, list] = {"cpu": [], "scaling": [], "gpu": []}
    for name in filter(None, args.cpu_presets.split(",")):
        need, have = estimate_gb(name), available_gb()
        if need > have:
            print(
                f"cpu {name}: not run: its training state needs about {need:.0f} GB, {have:.0f} GB are available",
                flush=True,
            )
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--case", f"{name}:{args.batch}:{args.steps}:{args.threads}"],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(f"cpu {name} failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        for checkpointing in (0, 1):
            case = row[f"ckpt{checkpointing}"]
            print(
                f"cpu {name:6s} batch {row['batch']} x {row['frames']} frames, {row['threads']} threads, "
                f"checkpointing {'on ' if checkpointing else 'off'}: loop {case['latent_frames_per_s']:8.1f} latent "
                f"frames/s ({case['samples_per_s']:.2f} samples/s), floor {case['floor_frames_per_s']:8.1f} -> ratio "
                f"{case['ratio']:.2f}",
                flush=True,
            )
        print(f"cpu {name:6s} checkpointing every block costs x{row['checkpointing_slowdown']:.2f} in the loop")
        rows["cpu"].append(row)
    if not args.no_scaling:
        rows["scaling"] = scaling("tiny", args.batch, args.scaling_steps)
    if args.gpu:
        cuda = args.gpu_device == "cuda" or (args.gpu_device == "auto" and torch.cuda.is_available())
        # The CPU stand-in checks the path: small batches (bf16 matrix products are slow on a CPU).
        max_batch = args.max_batch if cuda else min(args.max_batch, 4)
        batch = args.gpu_batch if cuda else min(args.gpu_batch, 2)
        rows["gpu"].append(
            size(
                args.gpu_preset,
                args.gpu_device,
                batch,
                args.steps,
                max_batch,
                args.cpu_budget_gb,
                not args.no_compile,
            )
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
