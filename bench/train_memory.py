"""Memory of a DiT training step (bench/train.py's size section): the memory each example adds,
with and without activation checkpointing, and the largest batch that fits.

A probe is one bare training step of a preset (bf16 autocast, the loss on random latents of the
preset's length with real prompts, backward, AdamW) at a given batch, and its peak memory:
- CUDA: the caching allocator's peak, in this process, on one model and optimizer built once for
  every probe (building a 1.2 B-parameter model per probe would cost more device time than the
  steps); a batch fits when its step runs (an out-of-memory error says it does not);
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


class TrainingStep:
    """A preset's model and AdamW, built once; `run(batch)` is one bare training step at that batch."""

    def __init__(self, name: str, device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.model = LatentDiffusion(preset(name)).to(device).train()
        self.optimizer = torch.optim.AdamW(
            self.model.trainable_parameters().values(), lr=5e-5, fused=device.type == "cuda"
        )
        self.generator = torch.Generator(device=device).manual_seed(0)

    def run(self, batch: int, checkpointing: int) -> None:
        self.model.dit.set_activation_checkpointing(checkpointing)
        fields = {
            "latents": torch.randn(
                batch, self.model.config.vae.latent_dim, self.model.config.latent_length, device=self.device
            ),
            "prompt": [PROMPT] * batch,
            "seconds_start": torch.zeros(batch, device=self.device),
            "seconds_total": torch.full((batch,), 47.0, device=self.device),
        }
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            loss = self.model.loss(fields, self.generator)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def cuda_peak(step: TrainingStep, batch: int, checkpointing: int) -> int | None:
    """Peak allocated bytes of a step (after one that allocates the optimizer's state); None: out of memory."""
    try:
        step.run(batch, checkpointing)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step.run(batch, checkpointing)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        step.optimizer.zero_grad(set_to_none=True)  # what a failed step left
        torch.cuda.empty_cache()


def cpu_peak(name: str, batch: int, checkpointing: int) -> int:
    """Peak resident bytes a step adds, measured in a fresh process (see cpu_probe)."""
    out = subprocess.run(
        [sys.executable, __file__, name, str(batch), str(checkpointing)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["step_peak_bytes"]


def cpu_probe(name: str, batch: int, checkpointing: int) -> None:
    torch.set_num_threads(1)
    step = TrainingStep(name, torch.device("cpu"))
    step.run(batch, checkpointing)  # the optimizer's state, allocated once
    with open("/proc/self/status") as f:
        before = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
    step.run(batch, checkpointing)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"step_peak_bytes": max(0, peak - before)}))


class Probes:
    """The peak memory of a preset's step per batch size on a device, each measured once. On CUDA
    the probes share `step` (one model for every batch and checkpointing setting)."""

    def __init__(
        self,
        name: str,
        device: torch.device,
        checkpointing: int,
        budget: int | None = None,
        step: TrainingStep | None = None,
    ) -> None:
        self.name, self.device, self.checkpointing, self.budget, self.step = name, device, checkpointing, budget, step
        self.peaks: dict[int, int | None] = {}

    def peak(self, batch: int) -> int | None:
        """Bytes; None: out of memory (CUDA)."""
        if batch not in self.peaks:
            if self.device.type == "cuda":
                self.peaks[batch] = cuda_peak(self.step, batch, self.checkpointing)
            else:
                self.peaks[batch] = cpu_peak(self.name, batch, self.checkpointing)
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
