"""Stable Audio Open's model_config.json to and from a ModelConfig.

`from_sao_model_config(json)` reads Stable Audio Open's published `model_config.json` (a
`diffusion_cond` model) and refuses, naming the key, anything this code does not build
exactly as stable-audio-tools does: loading weights into a different architecture is how
silently broken fine-tunes start. `to_sao_model_config` writes the file back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model.config import (
    ConditioningConfig,
    DiffusionConfig,
    DiTConfig,
    ModelConfig,
    ModelConfigError,
    NumberConfig,
    TextEncoderConfig,
    VAEConfig,
)


class SAOConfigError(ModelConfigError):
    """A Stable Audio Open model_config.json this code cannot build exactly; names the key."""


def from_sao_model_config(source: str | Path | dict[str, Any], t5_path: str | None = None) -> ModelConfig:
    """A ModelConfig equal to what stable-audio-tools builds from this `model_config.json`."""
    data = source if isinstance(source, dict) else read_model_config(source)
    where = "model_config.json" if isinstance(source, dict) else str(source)
    if data.get("model_type") != "diffusion_cond":
        raise SAOConfigError(
            f"{where}: model_type is {data.get('model_type')!r}; "
            "only 'diffusion_cond' models are supported "
            "(a VAE-only config goes to vae_config_from_sao)"
        )
    model = _get(data, "model", where)
    pretransform = _get(_get(model, "pretransform", where), "config", where)
    vae = vae_config_from_sao(pretransform, where + ": model.pretransform.config")
    diffusion = _get(model, "diffusion", where)
    _expect(diffusion, "type", "dit", where + ": model.diffusion")
    dit = _get(diffusion, "config", where)
    _expect(
        dit,
        "transformer_type",
        "continuous_transformer",
        where + ": model.diffusion.config",
        default="continuous_transformer",
    )
    _expect(dit, "project_cond_tokens", False, where + ": model.diffusion.config", default=True)
    _expect(dit, "global_cond_type", "prepend", where + ": model.diffusion.config", default="prepend")
    for key, neutral in (("patch_size", 1), ("input_concat_dim", 0), ("prepend_cond_dim", 0)):
        _expect(dit, key, neutral, where + ": model.diffusion.config", default=neutral)
    for key in ("prepend_cond_ids", "input_concat_ids"):
        _expect(diffusion, key, [], where + ": model.diffusion", default=[])
    conditioning = _sao_conditioning(_get(model, "conditioning", where), diffusion, t5_path, where)
    objective = diffusion.get("diffusion_objective", "v")
    if objective not in ("v", "rectified_flow"):
        raise SAOConfigError(
            f"{where}: model.diffusion.diffusion_objective is {objective!r}; supported: 'v', 'rectified_flow'"
        )
    config = ModelConfig(
        sample_rate=data.get("sample_rate", 44100),
        audio_channels=data.get("audio_channels", 2),
        sample_size=data.get("sample_size", 2097152),
        vae=vae,
        conditioning=conditioning,
        dit=DiTConfig(embed_dim=dit["embed_dim"], depth=dit["depth"], num_heads=dit["num_heads"]),
        diffusion=DiffusionConfig(objective=objective),
    )
    checks = {
        "io_channels": vae.latent_dim,
        "cond_token_dim": conditioning.cond_dim,
        "global_cond_dim": conditioning.cond_dim * len(conditioning.global_ids),
    }
    for key, value in checks.items():
        if dit.get(key, value) != value:
            raise SAOConfigError(
                f"{where}: model.diffusion.config.{key} is {dit[key]}, but the rest of the config implies {value}"
            )
    return config


def to_sao_model_config(config: ModelConfig) -> dict[str, Any]:
    """The `model_config.json` stable-audio-tools builds this model from (the inverse of
    from_sao_model_config). Training-only settings (timestep distribution, CFG dropout, padding
    mask) and sampling defaults have no place in it; the prompt encoder is named by its T5 name."""
    cond = config.conditioning
    used = set(cond.cross_attention_ids) | set(cond.global_ids)
    # Only the conditioners the model routes somewhere (and so builds, and has weights for).
    numbers = [
        {
            "id": cid,
            "type": "number",
            "config": {"min_val": _plain_number(n.min_val), "max_val": _plain_number(n.max_val)},
        }
        for cid, n in (("seconds_start", cond.seconds_start), ("seconds_total", cond.seconds_total))
        if cid in used
    ]
    diffusion: dict[str, Any] = {
        "cross_attention_cond_ids": list(cond.cross_attention_ids),
        "global_cond_ids": list(cond.global_ids),
        "type": "dit",
        "config": {
            "io_channels": config.vae.latent_dim,
            "embed_dim": config.dit.embed_dim,
            "depth": config.dit.depth,
            "num_heads": config.dit.num_heads,
            "cond_token_dim": cond.cond_dim,
            "global_cond_dim": cond.cond_dim * len(cond.global_ids),
            "project_cond_tokens": False,
            "transformer_type": "continuous_transformer",
        },
    }
    if config.diffusion.objective != "v":  # stable-audio-tools' default
        diffusion["diffusion_objective"] = config.diffusion.objective
    return {
        "model_type": "diffusion_cond",
        "sample_size": config.sample_size,
        "sample_rate": config.sample_rate,
        "audio_channels": config.audio_channels,
        "model": {
            "pretransform": {"type": "autoencoder", "iterate_batch": True, "config": sao_autoencoder_config(config)},
            "conditioning": {
                "configs": [
                    {
                        "id": "prompt",
                        "type": "t5",
                        "config": {"t5_model_name": cond.prompt.name, "max_length": cond.prompt.max_length},
                    },
                    *numbers,
                ],
                "cond_dim": cond.cond_dim,
            },
            "diffusion": diffusion,
            "io_channels": config.vae.latent_dim,
        },
        "training": {},
    }


def sao_autoencoder_config(config: ModelConfig) -> dict[str, Any]:
    """The VAE part of a model_config.json (`model.pretransform.config`, or `model` of an autoencoder config)."""
    vae, channels = config.vae, config.audio_channels
    shape = {"channels": vae.channels, "c_mults": list(vae.c_mults), "strides": list(vae.strides)}
    return {
        "encoder": {
            "type": "oobleck",
            "config": {"in_channels": channels, **shape, "latent_dim": 2 * vae.latent_dim, "use_snake": True},
        },
        "decoder": {
            "type": "oobleck",
            "config": {
                "out_channels": channels,
                **shape,
                "latent_dim": vae.latent_dim,
                "use_snake": True,
                "final_tanh": vae.final_tanh,
            },
        },
        "bottleneck": {"type": "vae"},
        "latent_dim": vae.latent_dim,
        "downsampling_ratio": vae.downsampling_ratio,
        "io_channels": channels,
    }


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def vae_config_from_sao(pretransform: dict[str, Any], where: str = "autoencoder config") -> VAEConfig:
    """The VAE part of a model_config.json: `model.pretransform.config`, or `model` of a VAE-only config."""
    encoder, decoder = _get(pretransform, "encoder", where), _get(pretransform, "decoder", where)
    _expect(encoder, "type", "oobleck", where + ".encoder")
    _expect(decoder, "type", "oobleck", where + ".decoder")
    _expect(_get(pretransform, "bottleneck", where), "type", "vae", where + ".bottleneck")
    enc, dec = _get(encoder, "config", where), _get(decoder, "config", where)
    for part, name in ((enc, "encoder"), (dec, "decoder")):
        _expect(part, "use_snake", True, f"{where}.{name}.config", default=False)
        _expect(part, "antialias_activation", False, f"{where}.{name}.config", default=False)
    for key in ("channels", "c_mults", "strides"):
        if enc.get(key) != dec.get(key):
            raise SAOConfigError(
                f"{where}: encoder and decoder differ in {key} ({enc.get(key)} vs {dec.get(key)}); "
                "only mirrored autoencoders are supported"
            )
    latent = dec["latent_dim"]
    if enc["latent_dim"] != 2 * latent:
        raise SAOConfigError(
            f"{where}: encoder.latent_dim ({enc['latent_dim']}) must be twice "
            f"decoder.latent_dim ({latent}) for a VAE bottleneck"
        )
    try:
        return VAEConfig(
            channels=enc["channels"],
            c_mults=enc["c_mults"],
            strides=enc["strides"],
            latent_dim=latent,
            final_tanh=dec.get("final_tanh", True),
        )
    except ValueError as error:
        raise SAOConfigError(f"{where}: {error}") from None


def _sao_conditioning(
    conditioning: dict[str, Any], diffusion: dict[str, Any], t5_path: str | None, where: str
) -> ConditioningConfig:
    fields: dict[str, Any] = {"cond_dim": _get(conditioning, "cond_dim", where)}
    for entry in _get(conditioning, "configs", where):
        cid, kind, cfg = entry.get("id"), entry.get("type"), entry.get("config", {})
        if cid == "prompt" and kind == "t5":
            name = cfg.get("t5_model_name", "t5-base")
            fields["prompt"] = TextEncoderConfig(name=name, path=t5_path, max_length=cfg.get("max_length", 128))
        elif cid in ("seconds_start", "seconds_total") and kind == "number":
            fields[cid] = NumberConfig(min_val=cfg.get("min_val", 0), max_val=cfg.get("max_val", 1))
        else:
            raise SAOConfigError(
                f"{where}: model.conditioning.configs has a {kind!r} conditioner with id {cid!r}; "
                "supported: prompt (t5), seconds_start and seconds_total (number)"
            )
    fields["cross_attention_ids"] = diffusion.get("cross_attention_cond_ids", [])
    fields["global_ids"] = diffusion.get("global_cond_ids", [])
    try:
        return ConditioningConfig(**fields)
    except ValueError as error:
        raise SAOConfigError(f"{where}: model.conditioning: {error}") from None


def read_model_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise SAOConfigError(f"{path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise SAOConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise SAOConfigError(f"{path}: not a model_config.json (a JSON {type(data).__name__}, not an object)")
    return data


def _get(data: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise SAOConfigError(f"{where}: missing key {key!r}")
    return data[key]


def _expect(data: dict[str, Any], key: str, value: Any, where: str, default: Any = None) -> None:
    found = data.get(key, default)
    if found != value:
        raise SAOConfigError(f"{where}.{key} is {found!r}; only {value!r} is supported")
