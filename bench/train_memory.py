"""Memory of a DiT training step (bench/train.py's size section): the memory each example adds,
with and without activation checkpointing, and the largest batch that fits.

A probe is one bare training step of a preset (bf16 autocast, the loss on random latents of the
preset's length with real prompts, backward, AdamW) at a given batch, and its peak memory:
- CUDA: the caching allocator's peak, in this process; a batch fits when its step runs (an
  out-of-memory error says it does not);
- CPU (the stand-in that checks this code where no GPU is): the peak resident memory of a fresh
  process running the step over what it held before; a batch fits when that peak stays within
  a budget.
Memory per example is the difference between the peaks at batch 2 and batch 1 (what grows with
the batch: activations kept for backward); the largest batch is found by doubling, then bisection.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# Run as a script (a CPU probe), this file's folder is first on sys.path and bench/model.py would
# shadow the `model` package: put the repository root there instead.
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path[0] = str(Path(__file__).resolve().parents[1])
import torch  # noqa: E402

from model.config import preset  # noqa: E402
from model.latent_diffusion import LatentDiffusion  # noqa: E402

PROMPT = "Genre: Jazz | Instruments: Piano, Double Bass | Moods: Calm"


def bare_step(name: str, device: torch.device, batch: int, checkpointing: int) -> Callable[[], None]:
    """One preset's training step at `batch` (the model and optimizer built once, here)."""
    torch.manual_seed(0)
    model = LatentDiffusion(preset(name)).to(device).train()
    model.dit.set_activation_checkpointing(checkpointing)
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=5e-5, fused=device.type == "cuda")
    frames = model.config.latent_length
    fields = {
        "latents": torch.randn(batch, model.config.vae.latent_dim, frames, device=device),
        "prompt": [PROMPT] * batch,
        "seconds_start": torch.zeros(batch, device=device),
        "seconds_total": torch.full((batch,), 47.0, device=device),
    }
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model.loss(fields, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def cuda_peak(name: str, batch: int, checkpointing: int) -> int | None:
    """Peak allocated bytes of the second step (the first allocates the optimizer's state); None: out of memory."""
    device = torch.device("cuda")
    try:
        step = bare_step(name, device, batch, checkpointing)
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        step = None
        torch.cuda.empty_cache()


def cpu_peak(name: str, batch: int, checkpointing: int) -> int:
    """Peak resident bytes a step adds, measured in a fresh process (see cpu_probe)."""
    out = subprocess.run(
        [sys.executable, __file__, name, str(batch), str(checkpointing)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["step_peak_bytes"]


def cpu_probe(name: str, batch: int, checkpointing: int) -> None:
    torch.set_num_threads(1)
    step = bare_step(name, torch.device("cpu"), batch, checkpointing)
    step()  # the optimizer's state, allocated once
    with open("/proc/self/status") as f:
        before = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"step_peak_bytes": max(0, peak - before)}))


class Probes:
    """The peak memory of a preset's step per batch size on a device, each measured once."""

    def __init__(self, name: str, device: torch.device, checkpointing: int, budget: int | None = None) -> None:
        self.name, self.device, self.checkpointing, self.budget = name, device, checkpointing, budget
        self.peaks: dict[int, int | None] = {}

    def peak(self, batch: int) -> int | None:
        """Bytes; None: out of memory (CUDA)."""
        if batch not in self.peaks:
            probe = cuda_peak if self.device.type == "cuda" else cpu_peak
            self.peaks[batch] = probe(self.name, batch, self.checkpointing)
        return self.peaks[batch]

    def fits(self, batch: int) -> bool:
        """CUDA: the step runs; CPU: its peak stays within the budget."""
        peak = self.peak(batch)
        return peak is not None and (self.device.type == "cuda" or peak <= self.budget)

    def per_example(self) -> float | None:
        """Bytes each example adds to a step's peak (batch 2 minus batch 1)."""
        one, two = self.peak(1), self.peak(2)
        return None if one is None or two is None else float(two - one)


def largest_batch(fits: Callable[[int], bool], limit: int) -> int:
    """The largest batch in [1, limit] for which fits(batch) holds, assuming it holds up to a point
    and not after (0 when not even 1 fits): doubling, then bisection."""
    if not fits(1):
        return 0
    good = 1
    while good * 2 <= limit and fits(good * 2):
        good *= 2
    bad = min(good * 2, limit + 1)
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good


if __name__ == "__main__":
    cpu_probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
