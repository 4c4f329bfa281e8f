"""Training defaults per model size (`recipe`): what the fields a user leaves unset become.

The field defaults of TrainConfig are the tiny model's (a quick run on a CPU). `sao-1.0` is
stable-audio-tools' recipe for Stable Audio Open 1.0 (its model_config.json's training section
and its trainer's defaults): AdamW lr 5e-5, betas (0.9, 0.999), weight decay 1e-3, InverseLR
(inv_gamma 1e6, power 0.5, exponential warm-up 0.99), EMA 0.9999 with a power-0.75 warm-up,
training times from a scrambled Sobol sequence, activation checkpointing of every block, a
checkpoint every 10,000 steps, demos every 2,000 steps at CFG scales 3, 5 and 7 with 250 sampler
steps. The CLI lays them under the config file and the options (`--print-config` shows the
result); from Python, `with_recipe(data)` does the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model.config import PRESETS
from model.training.config import DEFAULT_MODEL, TrainConfig

RECIPES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "small": {
        "optimizer": {"lr": 2e-4},
        "ema_decay": 0.9995,
        "ema_warmup_steps": 1000,
        "checkpoint_every": 1000,
        "demo": {"every": 1000},
        "validation": {"every": 500},
    },
    "sao-1.0": {
        "optimizer": {"lr": 5e-5, "betas": [0.9, 0.999], "weight_decay": 1e-3},
        "schedule": {"kind": "inverse", "inv_gamma": 1e6, "power": 0.5, "warmup_decay": 0.99},
        "ema_decay": 0.9999,
        "ema_warmup_power": 0.75,
        "timesteps": "sobol",
        "activation_checkpointing": 1,
        "checkpoint_every": 10000,
        "demo": {"every": 2000, "steps": 250, "cfg_scales": [3.0, 5.0, 7.0], "seconds": 10.0},
        "validation": {"every": 1000},
    },
}


def recipe_for(config: TrainConfig) -> str:
    """The recipe `config.recipe` names, or for auto the one its model's size calls for."""
    if config.recipe != "auto":
        return config.recipe
    if config.model is not None:
        return config.model if config.model in RECIPES else "sao-1.0" if config.model.endswith(".json") else "tiny"
    if config.init_from is None:
        return DEFAULT_MODEL
    folder = Path(config.init_from)
    if not folder.is_dir():
        return "sao-1.0"  # a weights file: SAO's model.safetensors (or .ckpt)
    return _folder_recipe(folder)


def _folder_recipe(folder: Path) -> str:
    """The recipe a checkpoint folder was trained with, else the preset its DiT's size matches."""
    try:
        document = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_MODEL  # build_model reports the folder's problem
    recipe = document.get("train", {}).get("recipe")
    if recipe in RECIPES:
        return recipe
    dit = document.get("model", {}).get("dit")
    for name, make in PRESETS.items():
        if name in RECIPES and make().dit.model_dump() == dit:
            return name
    return DEFAULT_MODEL


def recipe_defaults(config: TrainConfig) -> dict[str, Any]:
    """The defaults to lay under a config's own values: its recipe's."""
    return RECIPES[recipe_for(config)]


def named_recipe(config: TrainConfig) -> TrainConfig:
    """The config with `recipe` resolved to the name of the recipe it was completed with (not auto)."""
    return config.model_copy(update={"recipe": recipe_for(config)})


def with_recipe(data: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from `data` with its recipe's defaults under the values `data` sets."""
    first = TrainConfig.model_validate(data)
    return named_recipe(TrainConfig.model_validate(_merge(recipe_defaults(first), data)))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged
