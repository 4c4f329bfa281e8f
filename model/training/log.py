"""What a training run reports, on rank 0 only: log lines, TensorBoard scalars, demo audio, and
optionally the same to Weights & Biases.

TensorBoard events go to `<run>/tensorboard` and the same scalars, one JSON line per logged
step, to `<run>/metrics.jsonl` (for scripts and tests; a line has the training figures on
logging steps and the validation figures on validation steps); demo samples to
`<run>/demos/step-N/` as WAV files and spectrogram PNGs, one per prompt and guidance scale (and
into TensorBoard and W&B as audio and images).

W&B (`wandb.enabled`, the soundry[wandb] extra): one W&B run per run folder, its id kept in
`<run>/wandb_run_id` so a resumed run goes on in the same W&B run; offline mode writes under
`<run>/wandb` for `wandb sync`. Credentials stay W&B's own business (its login or WANDB_API_KEY);
soundry never reads or writes them.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from curation.core.extras import needs_extra
from model.training.config import DEFAULT_MODEL

log = logging.getLogger("soundry.train")


WANDB_RUN_ID = "wandb_run_id"


class TrainLog:
    def __init__(self, run: Path, is_main: bool, config: Any = None) -> None:
        self.run, self.is_main = run, is_main
        self.last: dict[str, float] = {}
        self._writer = None
        self._wandb = None
        if is_main:
            with needs_extra("train", "training logs", "tensorboard"):
                from torch.utils.tensorboard import SummaryWriter

            run.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(run / "tensorboard"))
            if config is not None and config.wandb.enabled:
                self._wandb = _start_wandb(run, config)

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
        if not self.is_main or not values:
            return
        self.last.update(values)
        with open(self.run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        for name, value in values.items():
            self._writer.add_scalar(f"{_group(name)}/{name}", value, step)
        self._writer.flush()
        if self._wandb is not None:
            self._wandb.log({f"{_group(k)}/{k}": v for k, v in values.items()}, step=step)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.line(f"step {step}: {shown}")

    def demo(
        self, step: int, prompts: list[str], audio: Tensor, sample_rate: int, cfg_scale: float | None = None
    ) -> list[Path]:
        """audio (B, C, T): one WAV and one spectrogram per prompt, named by prompt (and guidance scale)."""
        from model.generate import write_wav

        folder = self.run / "demos" / f"step-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for i, (prompt, clip) in enumerate(zip(prompts, audio, strict=True)):
            scale = "" if cfg_scale is None else f"cfg{cfg_scale:g}"
            name = f"demo-{i}-{scale}" if scale else f"demo-{i}"
            wav = folder / f"{name}.wav"
            write_wav(wav, clip, sample_rate)
            image = spectrogram_image(clip.mean(dim=0), sample_rate)
            _save_png(folder / f"{name}.png", image, f"{prompt} ({scale})" if scale else prompt)
            mono = clip.mean(dim=0).clamp(-1, 1)
            tag = f"demo/{scale}/{i}" if scale else f"demo/{i}"
            self._writer.add_audio(tag, mono, step, sample_rate=sample_rate)
            self._writer.add_image(tag, image[None], step)
            if self._wandb is not None:
                import wandb

                self._wandb.log({tag: wandb.Audio(mono.numpy(), sample_rate=sample_rate, caption=prompt)}, step=step)
            written.append(wav)
        (folder / "prompts.json").write_text(json.dumps(prompts, indent=2) + "\n")
        self.line(f"demo samples from the EMA weights{' at ' + scale if scale else ''}: {folder}")
        return written

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()


def _group(name: str) -> str:
    """The TensorBoard section of a scalar: valid_* and eval_* beside the training losses."""
    prefix = name.split("_", 1)[0]
    return prefix if prefix in ("valid", "eval") else "train"


def _start_wandb(run: Path, config: Any) -> Any:
    with needs_extra("wandb", "wandb.enabled", "wandb"):
        import wandb

    id_file = run / WANDB_RUN_ID
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:16] + "\n")
    return wandb.init(
        project=config.wandb.project,
        entity=config.wandb.entity,
        name=config.wandb.name or run.resolve().name,
        mode=config.wandb.mode,
        dir=str(run),
        id=id_file.read_text().strip(),
        resume="allow",
        config=config.model_dump(mode="json"),
    )


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
