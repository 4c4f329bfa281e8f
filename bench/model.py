"""Model speed and memory (machines here are noisy; ratios measured in one run mean most).

1. CPU: forward+backward seconds and peak memory of the DiT (on latents) and of the VAE (on
   stereo audio) per preset and length, each case in a fresh process so its peak RSS is its own.
2. GPU (when there is one): the bf16 matrix-multiply peak measured here (8192^3 products), then
   a sao-1.0 training step in bf16 autocast (conditioning with the frozen T5-base-shaped text
   encoder, DiT forward and backward, fused AdamW): FLOPs counted by torch's FlopCounterMode,
   time by CUDA events; achieved TFLOP/s as a fraction of that peak. Target >= 0.4.

    .venv/bin/python bench/model.py [--cpu-presets tiny,small] [--gpu-only] [--compile] [--batch 8,16]
        [--cpu-train-step]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and this file's name would
# shadow the `model` package: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

from model.config import preset  # noqa: E402
from model.latent_diffusion import LatentDiffusion  # noqa: E402
from model.vae import AudioVAE  # noqa: E402

TARGET = 0.4
CPU_CASES = {  # preset -> (DiT latent frames, VAE audio seconds)
    "tiny": ([128, 512], [1.0, 4.0]),
    "small": ([128, 512], [1.0, 4.0]),
    "sao-1.0": ([64], [0.5]),
}


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def timed_steps(step, repeats: int) -> tuple[float, float]:
    """Fastest (wall seconds, CPU seconds) of `repeats` steps after a warm-up. CPU seconds are the
    process's own, so other work on the machine inflates them far less than the wall time."""
    step()  # warm-up: allocator, kernel selection
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times)


def cpu_case(part: str, name: str, size: float, threads: int) -> dict:
    """One measurement, run in its own process (see main)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = preset(name)
    if part == "dit":
        model = LatentDiffusion(config)
        batch = {
            "latents": torch.randn(1, config.vae.latent_dim, int(size)),
            "prompt": ["a calm piano piece"],
            "seconds_start": torch.zeros(1),
            "seconds_total": torch.full((1,), 30.0),
        }
        params = sum(p.numel() for p in model.dit.parameters())

        def step() -> None:
            model.loss(batch, torch.Generator().manual_seed(0)).backward()
    else:
        model = AudioVAE(config.vae, config.audio_channels)
        audio = torch.randn(1, config.audio_channels, int(size * config.sample_rate) // 2048 * 2048) * 0.1
        params = sum(p.numel() for p in model.parameters())

        def step() -> None:
            out = model(audio)
            (out.reconstruction.pow(2).mean() + out.kl).backward()

    before = rss_bytes()
    seconds, cpu_seconds = timed_steps(step, repeats=2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "part": part,
        "preset": name,
        "size": size,
        "threads": threads,
        "params_m": params / 1e6,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_before_gb": before / 1e9,
        "step_peak_gb": max(0, peak - before) / 1e9,
    }


def run_cpu(presets: list[str], threads: int) -> list[dict]:
    rows = []
    for name in presets:
        frames, seconds = CPU_CASES[name]
        for part, sizes in (("dit", frames), ("vae", seconds)):
            for size in sizes:
                out = subprocess.run(
                    [sys.executable, __file__, "--case", f"{part}:{name}:{size}", "--threads", str(threads)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                unit = (
                    f"{int(size)} latent frames ({size * 2048 / 44100:.1f} s)" if part == "dit" else f"{size} s stereo"
                )
                print(
                    f"cpu {part:3s} {name:8s} {row['params_m']:9.2f} M  {unit:28s} fwd+bwd {row['seconds']:7.3f} s "
                    f"wall {row['cpu_seconds']:7.3f} s CPU  "
                    f"peak +{row['step_peak_gb']:.2f} GB over the {row['rss_before_gb']:.2f} GB RSS of libraries + "
                    f"model",
                    flush=True,
                )
                rows.append(row)
    return rows


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 10) -> float:
    """The matrix-multiply rate this device reaches on random square products (mean of `repeats`)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e12


def train_step_throughput(
    name: str,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int,
    frames: int,
    peak: float,
    compile_blocks: bool,
    flops_by_batch: dict[int, int],
    steps: int = 8,
) -> dict:
    """Training steps of a preset under autocast: conditioning (frozen text encoder), DiT forward and
    backward, fused AdamW. FLOPs are counted once in eager mode (the counter does not see inside
    compiled regions) and reused for the compiled model, which does the same arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = LatentDiffusion(preset(name)).to(device).train()
    if compile_blocks:
        for block in model.dit.blocks:
            block.compile()
    optimizer = torch.optim.AdamW(
        model.trainable_parameters().values(),
        lr=5e-5,
        betas=(0.9, 0.999),
        weight_decay=1e-3,
        fused=device.type == "cuda",
    )
    latent_dim = model.config.vae.latent_dim
    batch = {
        "latents": torch.randn(batch_size, latent_dim, frames, device=device),
        "prompt": ["Genre: Jazz | Instruments: Piano, Double Bass | Moods: Calm"] * batch_size,
        "seconds_start": torch.zeros(batch_size, device=device),
        "seconds_total": torch.full((batch_size,), 47.0, device=device),
    }
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype):
            loss = model.loss(batch, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if batch_size not in flops_by_batch:
        with FlopCounterMode(display=False) as counter:
            step()
        flops_by_batch[batch_size] = counter.get_total_flops()
    flops = flops_by_batch[batch_size]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - started) / steps
    achieved = flops / seconds / 1e12
    memory = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else float("nan")
    row = {
        "preset": name,
        "device": device.type,
        "batch": batch_size,
        "frames": frames,
        "compiled": compile_blocks,
        "step_s": seconds,
        "tflop_per_step": flops / 1e12,
        "tflops": achieved,
        "peak_tflops": peak,
        "ratio": achieved / peak,
        "memory_gb": memory,
    }
    verdict = "meets" if row["ratio"] >= TARGET else "below"
    print(
        f"{device.type} {name} train step {dtype} {'compiled' if compile_blocks else 'eager'} batch {batch_size} x "
        f"{frames} frames: "
        f"{seconds * 1e3:.0f} ms, {flops / 1e12:.3f} TFLOP -> {achieved:.2f} TFLOP/s = {row['ratio']:.2f} of the "
        f"measured "
        f"matmul peak ({verdict} target {TARGET}); peak memory {memory:.1f} GB",
        flush=True,
    )
    return row


def run_train_steps(
    name: str, device: torch.device, batch_sizes: list[int], frames: int, compile_blocks: bool
) -> list[dict]:
    dtype = torch.bfloat16
    peak = matmul_peak_tflops(device, dtype, n=8192 if device.type == "cuda" else 1024)
    label = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"{label}: {dtype} matmul peak measured {peak:.2f} TFLOP/s", flush=True)
    flops: dict[int, int] = {}
    rows = [train_step_throughput(name, device, dtype, b, frames, peak, False, flops) for b in batch_sizes]
    if compile_blocks:
        rows += [train_step_throughput(name, device, dtype, b, frames, peak, True, flops) for b in batch_sizes]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cpu-presets", default="tiny,small", help="presets measured on CPU (sao-1.0 needs ~12 GB and minutes)"
    )
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU measurements")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for the CPU cases (default: all cores)",
    )
    parser.add_argument("--batch", default="8,16", help="GPU batch sizes (comma-separated)")
    parser.add_argument(
        "--frames", type=int, default=1024, help="GPU latent frames per example (sao-1.0: 1024 = 47.6 s)"
    )
    parser.add_argument("--compile", action="store_true", help="also measure with every DiT block torch.compile'd")
    parser.add_argument(
        "--cpu-train-step", action="store_true", help="without a GPU, measure the training step of tiny on the CPU"
    )
    parser.add_argument("--json", help="write all rows to this file")
    args = parser.parse_args()
    if args.case:
        part, name, size = args.case.split(":")
        print(json.dumps(cpu_case(part, name, float(size), args.threads)))
        return 0
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work on this machine slows the CPU "
        f"figures)",
        flush=True,
    )
    rows = {"cpu": [] if args.gpu_only else run_cpu(args.cpu_presets.split(","), args.threads), "train_step": []}
    if torch.cuda.is_available():
        rows["train_step"] = run_train_steps(
            "sao-1.0", torch.device("cuda"), [int(b) for b in args.batch.split(",")], args.frames, args.compile
        )
    elif args.cpu_train_step:
        # The same measurement on this CPU with the tiny preset: checks the code path where no GPU is.
        rows["train_step"] = run_train_steps("tiny", torch.device("cpu"), [2], 128, compile_blocks=False)
    else:
        print(
            "gpu: none here; the sao-1.0 TFLOP/s check runs where CUDA is available (--cpu-train-step runs it on "
            "tiny here)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
