"""What a training run reports, on rank 0 only: log lines, TensorBoard scalars, demo audio.

TensorBoard events go to `<run>/tensorboard` and the same scalars, one JSON line per logged
step, to `<run>/metrics.jsonl` (for scripts and tests); demo samples to `<run>/demos/step-N/` as WAV
files and spectrogram PNGs (and into TensorBoard as audio and images).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from curation.core.extras import needs_extra
from model.training.config import DEFAULT_MODEL

log = logging.getLogger("soundry.train")


class TrainLog:
    def __init__(self, run: Path, is_main: bool) -> None:
        self.run, self.is_main = run, is_main
        self.last: dict[str, float] = {}
        self._writer = None
        if is_main:
            with needs_extra("train", "training logs", "tensorboard"):
                from torch.utils.tensorboard import SummaryWriter

            run.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(run / "tensorboard"))

    def line(self, text: str) -> None:
        if self.is_main:
            log.info(text)

    def start(self, config: Any, model: torch.nn.Module, ctx: Any, loader_config: Any) -> None:
        if not self.is_main:
            return
        trainable = sum(p.numel() for p in model.trainable_parameters().values())
        data = "latents" if loader_config.latents else "audio (VAE encodes on the fly)"
        architecture = config.model or config.init_from or DEFAULT_MODEL
        self.line(
            f"training {architecture}: {trainable / 1e6:.2f} M trainable parameters on {ctx.world_size} "
            f"rank(s) ({ctx.device.type}), {data}, global batch "
            f"{config.data.batch_size * ctx.world_size * config.grad_accum}"
        )
        (self.run / "train_config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.is_main:
            return
        self.last = dict(values)
        with open(self.run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        for name, value in values.items():
            self._writer.add_scalar(f"train/{name}", value, step)
        self._writer.flush()
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.line(f"step {step}: {shown}")

    def demo(self, step: int, prompts: list[str], audio: Tensor, sample_rate: int) -> list[Path]:
        """audio (B, C, T): one WAV and one spectrogram per prompt."""
        from model.generate import write_wav

        folder = self.run / "demos" / f"step-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for i, (prompt, clip) in enumerate(zip(prompts, audio, strict=True)):
            wav = folder / f"demo-{i}.wav"
            write_wav(wav, clip, sample_rate)
            image = spectrogram_image(clip.mean(dim=0), sample_rate)
            _save_png(folder / f"demo-{i}.png", image, prompt)
            self._writer.add_audio(f"demo/{i}", clip.mean(dim=0).clamp(-1, 1), step, sample_rate=sample_rate)
            self._writer.add_image(f"demo/{i}", image[None], step)
            written.append(wav)
        (folder / "prompts.json").write_text(json.dumps(prompts, indent=2) + "\n")
        self.line(f"demo samples from the EMA weights: {folder}")
        return written

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def spectrogram_image(mono: Tensor, sample_rate: int, n_fft: int = 1024) -> np.ndarray:
    """Log-magnitude STFT scaled to [0, 1], low frequencies at the bottom: (freq, time)."""
    window = torch.hann_window(n_fft)
    spec = torch.stft(mono.float(), n_fft, hop_length=n_fft // 4, window=window, return_complex=True).abs()
    db = 20 * torch.log10(spec.clamp_min(1e-5))
    db = (db - db.max()).clamp_min(-80) / 80 + 1
    return db.flip(0).numpy()


def _save_png(path: Path, image: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3))
    axes.imshow(image, aspect="auto", cmap="magma")
    axes.set_title(title[:80], fontsize=8)
    axes.set_axis_off()
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)
