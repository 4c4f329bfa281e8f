"""`soundry export`: a soundry checkpoint folder as the files stable-audio-tools reads.

    <output>/model_config.json   SAO's format (model_type diffusion_cond, or autoencoder for a VAE)
    <output>/model.safetensors   SAO's tensor names (EMA weights by default)

The frozen T5 prompt encoder is not in SAO's file (stable-audio-tools loads it by name), so
an export is complete for a model trained with a real T5; a random stand-in encoder cannot
travel, and the export says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.core.errors import UserError
from model.checkpoint import checkpoint_writer, load_checkpoint, read_checkpoint_info
from model.latent_diffusion import LatentDiffusion
from model.sao.checkpoint import save_sao_vae_weights, save_sao_weights
from model.sao.config import sao_autoencoder_config, to_sao_model_config

CONFIG = "model_config.json"
WEIGHTS = "model.safetensors"


class ExportError(UserError):
    """An export the user must change (an output folder in the way)."""


@dataclass(frozen=True)
class Export:
    folder: Path
    kind: str  # "diffusion" | "vae"
    weights: str  # "ema" | "model"
    step: int
    parameters: int
    warnings: list[str]


def export_sao(checkpoint: str | Path, output: str | Path, *, use_ema: bool = True, overwrite: bool = False) -> Export:
    info = read_checkpoint_info(checkpoint)
    output = Path(output)
    if output.exists() and not output.is_dir():
        # --overwrite replaces a folder; a file there is more likely a mistyped path than an old export.
        raise ExportError(f"{output} is a file; export writes a folder: choose another path")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ExportError(f"{output} exists and is not empty; choose another folder or pass --overwrite")
    model = load_checkpoint(info.folder, use_ema=use_ema)
    warnings = []
    with checkpoint_writer(output) as tmp:
        if isinstance(model, LatentDiffusion):
            save_sao_weights(model, tmp / WEIGHTS)
            config = to_sao_model_config(info.config)
            prompt = info.config.conditioning.prompt
            encoder = model.conditioners.text_encoder
            if encoder is not None and encoder.is_random:
                warnings.append(
                    f"the prompt encoder is a random stand-in of shape {prompt.name!r}, which stable-audio-tools "
                    "cannot load by name: train with a real T5 (conditioning.prompt.path) for prompts to carry over"
                )
        else:
            save_sao_vae_weights(model, tmp / WEIGHTS)
            config = {
                "model_type": "autoencoder",
                "sample_size": info.config.sample_size,
                "sample_rate": info.config.sample_rate,
                "audio_channels": info.config.audio_channels,
                "model": sao_autoencoder_config(info.config),
            }
        (tmp / CONFIG).write_text(json.dumps(config, indent=4) + "\n")
    if use_ema and not info.has_ema:
        warnings.append("the checkpoint has no EMA weights; its raw weights were exported")
    state = model.own_state_dict() if isinstance(model, LatentDiffusion) else model.state_dict()
    parameters = sum(t.numel() for t in state.values())
    return Export(output, info.kind, "ema" if use_ema and info.has_ema else "model", info.step, parameters, warnings)
