"""Model speed and memory (machines here are noisy; ratios measured in one run mean most).

1. CPU: forward+backward seconds and peak memory of the DiT (on latents) and of the VAE (on
   stereo audio) per preset and length, each case in a fresh process so its peak RSS is its own.
2. GPU (when there is one): the bf16 matrix-multiply peak measured here (8192^3 products), then
   a sao-1.0 training step in bf16 autocast (conditioning with the frozen T5-base-shaped text
   encoder, DiT forward and backward, fused AdamW): FLOPs counted by torch's FlopCounterMode,
   time by CUDA events; achieved TFLOP/s as a fraction of that peak. Target >= 0.4.

    .venv/bin/python bench/model.py [--cpu-presets tiny,small] [--gpu-only] [--compile] [--batch 16]
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


def timed_steps(step, repeats: int) -> float:
    step()  # warm-up: allocator, kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def cpu_case(part: str, name: str, size: float) -> dict:
    """One measurement, run in its own process (see main)."""
    torch.manual_seed(0)
    config = preset(name)
    if part == "dit":
        model = LatentDiffusion(config)
        batch = {"latents": torch.randn(1, config.vae.latent_dim, int(size)), "prompt": ["a calm piano piece"],
                 "seconds_start": torch.zeros(1), "seconds_total": torch.full((1,), 30.0)}
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
    seconds = timed_steps(step, repeats=2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"part": part, "preset": name, "size": size, "params_m": params / 1e6, "seconds": seconds,
            "weights_gb": before / 1e9, "step_peak_gb": max(0, peak - before) / 1e9}


def run_cpu(presets: list[str]) -> list[dict]:
    rows = []
    for name in presets:
        frames, seconds = CPU_CASES[name]
        for part, sizes in (("dit", frames), ("vae", seconds)):
            for size in sizes:
                out = subprocess.run([sys.executable, __file__, "--case", f"{part}:{name}:{size}"],
                                     capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                unit = f"{int(size)} latent frames ({size * 2048 / 44100:.1f} s)" if part == "dit" else f"{size} s stereo"
                print(f"cpu {part:3s} {name:8s} {row['params_m']:9.2f} M  {unit:28s} fwd+bwd {row['seconds']:7.3f} s  "
                      f"peak +{row['step_peak_gb']:.2f} GB over {row['weights_gb']:.2f} GB", flush=True)
                rows.append(row)
    return rows


def matmul_peak_tflops(n: int = 8192, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1e3) / 1e12


def run_gpu(batch_sizes: list[int], frames: int, peak: float, compile_blocks: bool, flops_by_batch: dict[int, int],
            steps: int = 8) -> list[dict]:
    """sao-1.0 training steps; FLOPs are counted in eager mode (the counter does not see inside
    compiled regions) and reused for the compiled model, which does the same arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = LatentDiffusion(preset("sao-1.0")).cuda().train()
    if compile_blocks:
        for block in model.dit.blocks:
            block.compile()
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=5e-5, betas=(0.9, 0.999), weight_decay=1e-3, fused=True)
    rows = []
    for batch_size in batch_sizes:
        batch = {"latents": torch.randn(batch_size, 64, frames, device="cuda"),
                 "prompt": ["Genre: Jazz | Instruments: Piano, Double Bass | Moods: Calm"] * batch_size,
                 "seconds_start": torch.zeros(batch_size, device="cuda"), "seconds_total": torch.full((batch_size,), 47.0, device="cuda")}
        generator = torch.Generator(device="cuda").manual_seed(0)

        def step() -> None:
            with torch.autocast("cuda", dtype=torch.bfloat16):
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
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            step()
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1e3 / steps
        achieved = flops / seconds / 1e12
        row = {"batch": batch_size, "frames": frames, "compiled": compile_blocks, "step_s": seconds, "tflop_per_step": flops / 1e12,
               "tflops": achieved, "peak_tflops": peak, "ratio": achieved / peak, "memory_gb": torch.cuda.max_memory_allocated() / 1e9}
        verdict = "meets" if row["ratio"] >= TARGET else "below"
        print(f"gpu sao-1.0 train step bf16 {'compiled' if compile_blocks else 'eager'} batch {batch_size} x {frames} frames: "
              f"{seconds * 1e3:.0f} ms, {flops / 1e12:.1f} TFLOP -> {achieved:.0f} TFLOP/s = {row['ratio']:.2f} of peak "
              f"({verdict} target {TARGET}); peak memory {row['memory_gb']:.1f} GB", flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-presets", default="tiny,small", help="presets measured on CPU (sao-1.0 needs ~12 GB and minutes)")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU measurements")
    parser.add_argument("--batch", default="8,16", help="GPU batch sizes (comma-separated)")
    parser.add_argument("--frames", type=int, default=1024, help="GPU latent frames per example (sao-1.0: 1024 = 47.6 s)")
    parser.add_argument("--compile", action="store_true", help="also measure with every DiT block torch.compile'd")
    parser.add_argument("--json", help="write all rows to this file")
    args = parser.parse_args()
    if args.case:
        part, name, size = args.case.split(":")
        print(json.dumps(cpu_case(part, name, float(size))))
        return 0
    rows = {"cpu": [] if args.gpu_only else run_cpu(args.cpu_presets.split(",")), "gpu": []}
    if torch.cuda.is_available():
        batches, flops = [int(b) for b in args.batch.split(",")], {}
        peak = matmul_peak_tflops()
        print(f"gpu {torch.cuda.get_device_name()}: bf16 matmul peak measured {peak:.0f} TFLOP/s", flush=True)
        rows["gpu"] = run_gpu(batches, args.frames, peak, compile_blocks=False, flops_by_batch=flops)
        if args.compile:
            rows["gpu"] += run_gpu(batches, args.frames, peak, compile_blocks=True, flops_by_batch=flops)
    else:
        print("gpu: none here; the TFLOP/s check runs where CUDA is available")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
