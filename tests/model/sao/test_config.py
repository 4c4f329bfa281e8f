"""Stable Audio Open's model_config.json: its SAO 1.0 file is the sao-1.0 preset both ways, every
preset round-trips, and what this code cannot build exactly is refused by key."""

import json
from pathlib import Path

import pytest

from model.config import DiffusionConfig, preset
from model.sao.config import SAOConfigError, from_sao_model_config, to_sao_model_config

REFERENCE = Path(__file__).parents[1] / "sao_reference"


def test_reference_model_config_builds_the_sao_preset():
    assert from_sao_model_config(REFERENCE / "sao-1.0-model-config.json") == preset("sao-1.0")


def test_the_sao_preset_writes_sao_s_own_model_config():
    assert to_sao_model_config(preset("sao-1.0")) == json.loads((REFERENCE / "sao-1.0-model-config.json").read_text())


@pytest.mark.parametrize("name", ["tiny", "small", "sao-1.0"])
@pytest.mark.parametrize("objective", ["v", "rectified_flow"])
def test_model_configs_round_trip(name, objective):
    config = preset(name).model_copy(update={"diffusion": DiffusionConfig(objective=objective)})
    assert from_sao_model_config(to_sao_model_config(config)) == config


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("model", "pretransform", "config", "encoder", "type"), "dac", "encoder.type is 'dac'"),
        (("model", "diffusion", "type"), "adp_cfg_1d", "model.diffusion.type is 'adp_cfg_1d'"),
        (("model", "diffusion", "config", "project_cond_tokens"), True, "project_cond_tokens is True"),
        (("model", "conditioning", "configs", 0, "type"), "clap_text", "'clap_text' conditioner with id 'prompt'"),
        (("model_type",), "autoencoder", "only 'diffusion_cond'"),
        (("model", "diffusion", "config", "global_cond_dim"), 768, "global_cond_dim is 768"),
    ],
)
def test_unsupported_sao_configs_are_refused_by_key(path, value, message):
    document = json.loads((REFERENCE / "sao-1.0-model-config.json").read_text())
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SAOConfigError, match=message):
        from_sao_model_config(document)
