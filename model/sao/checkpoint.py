"""Stable Audio Open checkpoints: SAO's tensor names <-> this model's, strict both ways.

A `model.safetensors` of SAO holds `model.model.*` (the DiT), `pretransform.model.*` (the
VAE, old weight-norm `weight_g`/`weight_v`) and `conditioner.conditioners.seconds_*` (the
number conditioners); the T5 encoder is not in it. The VAE modules here carry SAO's own
names, so only the DiT and the conditioners are renamed, by the table below (ours, SAO's),
read top down, first match wins. A VAE-only checkpoint (stable-audio-tools' autoencoder
layout, `encoder.*`/`decoder.*`, possibly under `autoencoder.`) loads the same way.

    model = load_sao("model_config.json", "model.safetensors", t5_path="/models/t5-base")
    save_sao_weights(model, "finetuned.safetensors")   # loads back into stable-audio-tools
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from model.config import VAEConfig, preset
from model.latent_diffusion import LatentDiffusion
from model.sao.config import from_sao_model_config, read_model_config, vae_config_from_sao
from model.text_encoder import load_text_encoder
from model.vae import AudioVAE
from model.weights import StateDictError, load_strict, read_tensors, write_tensors

DIT = "model.model.transformer.layers.{n}"
RENAMES = [
    ("dit.blocks.{n}.self_attn_norm.weight", f"{DIT}.pre_norm.gamma"),
    ("dit.blocks.{n}.self_attn_norm.bias", f"{DIT}.pre_norm.beta"),
    ("dit.blocks.{n}.cross_attn_norm.weight", f"{DIT}.cross_attend_norm.gamma"),
    ("dit.blocks.{n}.cross_attn_norm.bias", f"{DIT}.cross_attend_norm.beta"),
    ("dit.blocks.{n}.ff_norm.weight", f"{DIT}.ff_norm.gamma"),
    ("dit.blocks.{n}.ff_norm.bias", f"{DIT}.ff_norm.beta"),
    ("dit.blocks.{n}.ff.proj_in.{p}", f"{DIT}.ff.ff.0.proj.{{p}}"),
    ("dit.blocks.{n}.ff.proj_out.{p}", f"{DIT}.ff.ff.2.{{p}}"),
    ("dit.blocks.{n}.{rest}", f"{DIT}.{{rest}}"),
    ("dit.project_in.{p}", "model.model.transformer.project_in.{p}"),
    ("dit.project_out.{p}", "model.model.transformer.project_out.{p}"),
    ("dit.rotary.inv_freq", "model.model.transformer.rotary_pos_emb.inv_freq"),
    ("dit.{rest}", "model.model.{rest}"),
    ("conditioners.prompt.proj.{p}", "conditioner.conditioners.prompt.proj_out.{p}"),
    ("conditioners.{id}.fourier_weights", "conditioner.conditioners.{id}.embedder.embedding.0.weights"),
    ("conditioners.{id}.proj.{p}", "conditioner.conditioners.{id}.embedder.embedding.1.{p}"),
    ("vae.{rest}", "pretransform.model.{rest}"),
]
VAE_PREFIXES = ("", "autoencoder.", "pretransform.model.")
PLACEHOLDERS = {"n": r"\d+", "id": r"\w+", "p": r"\w+", "rest": r".+"}


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name, expr in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{expr})")
    return re.compile(pattern)


RULES = [(_compile(ours), ours, _compile(sao), sao) for ours, sao in RENAMES]


def to_sao_name(key: str) -> str | None:
    for ours, _, _, sao in RULES:
        if match := ours.fullmatch(key):
            return sao.format(**match.groupdict())
    return None


def from_sao_name(key: str) -> str | None:
    for _, ours, sao, _ in RULES:
        if match := sao.fullmatch(key):
            return ours.format(**match.groupdict())
    return None


def load_sao_weights(model: LatentDiffusion, tensors: Mapping[str, Tensor], source: str = "SAO checkpoint") -> None:
    load_strict(
        model,
        tensors,
        source,
        to_module=from_sao_name,
        to_file=lambda k: to_sao_name(k) or k,
        skip=model.text_encoder_keys(),
    )


def sao_state_dict(model: LatentDiffusion) -> dict[str, Tensor]:
    """The model's weights under SAO's names (the frozen text encoder is not part of SAO's file)."""
    renamed = {}
    for key, tensor in model.own_state_dict().items():
        name = to_sao_name(key)
        if name is None:
            raise StateDictError(f"model tensor {key} has no name in SAO's layout")
        renamed[name] = tensor
    return renamed


def save_sao_weights(model: LatentDiffusion, path: str | Path) -> None:
    write_tensors(path, sao_state_dict(model), metadata={"format": "pt", "layout": "stable-audio-open"})


def load_sao(
    model_config: str | Path, weights: str | Path, t5_path: str | None = None, device: str | torch.device = "cpu"
) -> LatentDiffusion:
    """A LatentDiffusion built from SAO's model_config.json with SAO's weights, strictly loaded.

    The model is built on the meta device and takes the file's tensors as they are, so a
    1.2 B-parameter model costs its weights' memory once, not twice."""
    config = from_sao_model_config(model_config, t5_path)
    text_encoder = load_text_encoder(config.conditioning.prompt)
    with torch.device("meta"):
        model = LatentDiffusion(config, text_encoder=text_encoder)
    load_sao_weights(model, read_tensors(weights), str(weights))
    return model.to(device)


def _vae_prefix(tensors: Mapping[str, Tensor]) -> str:
    for prefix in VAE_PREFIXES:
        if any(k.startswith(prefix + "encoder.") for k in tensors):
            return prefix
    return ""


def load_sao_vae_weights(vae: AudioVAE, tensors: Mapping[str, Tensor], source: str = "SAO VAE checkpoint") -> None:
    """A VAE-only checkpoint (`encoder.*`, `decoder.*`, under an optional `autoencoder.` or
    `pretransform.model.` prefix) into an AudioVAE, strictly."""
    prefix = _vae_prefix(tensors)
    load_strict(
        vae,
        tensors,
        source,
        to_module=lambda k: k[len(prefix) :] if k.startswith(prefix) else None,
        to_file=lambda k: prefix + k,
    )


def save_sao_vae_weights(vae: AudioVAE, path: str | Path) -> None:
    """stable-audio-tools' autoencoder layout: `encoder.*` and `decoder.*`."""
    write_tensors(path, vae.state_dict(), metadata={"format": "pt", "layout": "stable-audio-open-autoencoder"})


def sao_vae_format(model_config: str | Path | None = None) -> tuple[VAEConfig, int, int]:
    """(VAE config, audio channels, sample rate) of a model_config.json (an `autoencoder` config,
    or a `diffusion_cond` one's pretransform), or SAO 1.0's when none is given."""
    if model_config is None:
        config = preset("sao-1.0")
        return config.vae, config.audio_channels, config.sample_rate
    data = read_model_config(model_config)
    if data.get("model_type") == "autoencoder":
        return (
            vae_config_from_sao(data.get("model", {}), f"{model_config}: model"),
            data.get("audio_channels", 2),
            data.get("sample_rate", 44100),
        )
    config = from_sao_model_config(data)
    return config.vae, config.audio_channels, config.sample_rate


def load_sao_vae(
    weights: str | Path, model_config: str | Path | None = None, device: str | torch.device = "cpu"
) -> AudioVAE:
    """SAO's VAE alone, its architecture from `sao_vae_format(model_config)`."""
    vae_config, channels, _ = sao_vae_format(model_config)
    with torch.device("meta"):
        vae = AudioVAE(vae_config, channels)
    load_sao_vae_weights(vae, read_tensors(weights), str(weights))
    return vae.to(device)
