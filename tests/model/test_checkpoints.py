"""Stable Audio Open's layout and our checkpoint folder, both ways.

The SAO key test runs at two sizes. At full size (1.2 B parameters) the model is built on
the meta device and loads meta tensors of exactly the reference list's names and shapes:
every name mapped, every shape checked, with no memory. The value round trip (a real
safetensors file, strict load, save back, same tensors) runs on a scaled copy: SAO's
structure (24 blocks, five VAE blocks, the same 745 names) at a small width, because 4.8 GB of
random tensors written and read twice does not fit a 2-core test machine's minute.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.checkpoint import CheckpointError, load_checkpoint, load_vae, read_checkpoint_info, save_checkpoint
from model.config import ModelConfig, preset
from model.latent_diffusion import LatentDiffusion
from model.sao.checkpoint import (
    load_sao,
    load_sao_vae,
    load_sao_vae_weights,
    load_sao_weights,
    sao_state_dict,
    save_sao_vae_weights,
    save_sao_weights,
)
from model.vae import AudioVAE
from model.weights import StateDictError

REFERENCE = Path(__file__).parent / "sao_reference"


def reference_shapes() -> dict[str, list[int]]:
    rows = (line.rstrip("\n").split("\t") for line in (REFERENCE / "sao-1.0-state-dict.tsv").read_text().splitlines())
    return {name: [int(n) for n in shape.split("x")] for name, shape, _ in rows}


def scaled_sao() -> ModelConfig:
    """SAO's structure at a small width: the same tensor names, smaller shapes."""
    config = preset("sao-1.0").model_dump()
    config["vae"]["channels"] = 1
    config["dit"].update(embed_dim=64, num_heads=1)
    config["conditioning"].update(cond_dim=64, prompt={"name": "tiny", "max_length": 16})
    config["sample_size"] = 2048 * 8
    return ModelConfig.model_validate(config)


@pytest.fixture(scope="module")
def sao_on_meta():
    with torch.device("meta"):
        return LatentDiffusion(preset("sao-1.0"))


def test_full_size_names_and_shapes_are_the_reference_list(sao_on_meta):
    reference = reference_shapes()
    assert len(reference) == 745
    ours = {name: list(t.shape) for name, t in sao_state_dict(sao_on_meta).items()}
    assert ours == reference
    load_sao_weights(
        sao_on_meta, {name: torch.empty(shape, device="meta") for name, shape in reference.items()}, "reference list"
    )


def test_full_size_parameter_counts(sao_on_meta):
    reference = reference_shapes()
    dit = sum(t.numel() for n, t in sao_on_meta.dit.state_dict().items() if not n.endswith("inv_freq"))
    assert dit == sum(
        math.prod(s) for n, s in reference.items() if n.startswith("model.model.") and not n.endswith("inv_freq")
    )
    assert abs(dit / 1e6 - 1057) < 1
    # SAO's LayerNorm betas (72 of them: 3 per block) are fixed buffers, not trained parameters.
    betas = [name for name, _ in sao_on_meta.dit.named_buffers() if name.endswith("norm.bias")]
    assert len(betas) == 72
    assert sum(p.numel() for p in sao_on_meta.dit.parameters()) == dit - 72 * 1536
    vae = sum(p.numel() for p in sao_on_meta.vae.parameters())
    assert (
        abs(vae / 1e6 - 156) < 0.5
        and abs(sum(p.numel() for p in sao_on_meta.vae.encoder.parameters()) / 1e6 - 78) < 0.5
    )


def test_value_round_trip_through_sao_files(tmp_path):
    torch.manual_seed(0)
    model = LatentDiffusion(scaled_sao())
    expected = {name: list(t.shape) for name, t in sao_state_dict(model).items()}
    assert set(expected) == set(reference_shapes()), "the scaled copy has exactly SAO's names"
    generator = torch.Generator().manual_seed(1)
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in expected.items()}
    save_file(tensors, tmp_path / "model.safetensors")
    loaded = LatentDiffusion(scaled_sao())
    from model.weights import read_tensors

    load_sao_weights(loaded, read_tensors(tmp_path / "model.safetensors"), "model.safetensors")
    save_sao_weights(loaded, tmp_path / "again.safetensors")
    again = load_file(tmp_path / "again.safetensors")
    assert again.keys() == tensors.keys() and all(torch.equal(again[k], tensors[k]) for k in tensors)
    assert torch.equal(
        loaded.dit.blocks[5].ff.proj_in.weight, tensors["model.model.transformer.layers.5.ff.ff.0.proj.weight"]
    )


def test_mismatches_are_errors_naming_the_tensor():
    model = LatentDiffusion(scaled_sao())
    good = {k: v.clone() for k, v in sao_state_dict(model).items()}
    cases = {
        "missing tensor pretransform.model.decoder.layers.7.weight_v": lambda t: t.pop(
            "pretransform.model.decoder.layers.7.weight_v"
        ),
        "unexpected tensor conditioner.conditioners.prompt.model.shared.weight": lambda t: t.update(
            {"conditioner.conditioners.prompt.model.shared.weight": torch.zeros(3)}
        ),
        r"tensor model.model.transformer.layers.2.self_attn.to_qkv.weight \(model: "
        r"dit.blocks.2.self_attn.to_qkv.weight\) has shape \[192, 63\]": lambda t: t.update(
            {"model.model.transformer.layers.2.self_attn.to_qkv.weight": torch.zeros(192, 63)}
        ),
    }
    for message, damage in cases.items():
        tensors = dict(good)
        damage(tensors)
        with pytest.raises(StateDictError, match=message):
            load_sao_weights(model, tensors, "model.safetensors")


@pytest.mark.parametrize("prefix", ["", "autoencoder."])
def test_vae_only_checkpoint_round_trip(tmp_path, prefix):
    torch.manual_seed(0)
    vae = AudioVAE(scaled_sao().vae, 2)
    save_sao_vae_weights(vae, tmp_path / "vae.safetensors")
    tensors = load_file(tmp_path / "vae.safetensors")
    assert all(k.startswith(("encoder.layers.", "decoder.layers.")) for k in tensors)
    torch.manual_seed(1)
    other = AudioVAE(scaled_sao().vae, 2)
    load_sao_vae_weights(other, {prefix + k: v for k, v in tensors.items()})
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), other.state_dict().values(), strict=True))
    with pytest.raises(StateDictError, match="missing tensor encoder.layers.0.weight_g"):
        load_sao_vae_weights(other, {k: v for k, v in tensors.items() if k != "encoder.layers.0.weight_g"})


def scaled_sao_files(folder: Path) -> tuple[Path, Path, LatentDiffusion]:
    """SAO's model_config.json edited to the scaled copy's widths, and that model's weights in SAO's layout."""
    document = json.loads((REFERENCE / "sao-1.0-model-config.json").read_text())
    for part in ("encoder", "decoder"):
        document["model"]["pretransform"]["config"][part]["config"]["channels"] = 1
    document["model"]["conditioning"]["cond_dim"] = 64
    document["model"]["conditioning"]["configs"][0]["config"].update(t5_model_name="tiny", max_length=16)
    document["model"]["diffusion"]["config"].update(embed_dim=64, num_heads=1, cond_token_dim=64, global_cond_dim=128)
    document["sample_size"] = scaled_sao().sample_size
    (folder / "model_config.json").write_text(json.dumps(document))
    torch.manual_seed(0)
    source = LatentDiffusion(scaled_sao())
    save_sao_weights(source, folder / "model.safetensors")
    return folder / "model_config.json", folder / "model.safetensors", source


def test_load_sao_from_files(tmp_path):
    config_file, weights, source = scaled_sao_files(tmp_path)
    model = load_sao(config_file, weights)
    assert model.config == scaled_sao()
    assert all(
        torch.equal(a, b) for a, b in zip(sao_state_dict(model).values(), sao_state_dict(source).values(), strict=True)
    )
    save_sao_vae_weights(source.vae, tmp_path / "vae.safetensors")
    vae = load_sao_vae(tmp_path / "vae.safetensors", config_file)
    assert torch.equal(vae.decoder.layers[0].weight_v, source.vae.decoder.layers[0].weight_v)


def test_model_init_converts_sao_files_into_a_checkpoint(tmp_path, capsys):
    from orchestration.cli.main import main

    config_file, weights, source = scaled_sao_files(tmp_path)
    assert (
        main(["model-init", str(tmp_path / "ckpt"), "--sao-config", str(config_file), "--sao-weights", str(weights)])
        == 0
    )
    info = read_checkpoint_info(tmp_path / "ckpt")
    assert (info.weights, info.metadata["source"]) == ("stable-audio-open", str(weights))
    model = load_checkpoint(tmp_path / "ckpt")
    assert all(
        torch.equal(a, b) for a, b in zip(sao_state_dict(model).values(), sao_state_dict(source).values(), strict=True)
    )
    bad = load_file(weights)
    bad.pop("model.model.preprocess_conv.weight")
    save_file(bad, tmp_path / "bad.safetensors")
    assert (
        main(
            [
                "model-init",
                str(tmp_path / "bad"),
                "--sao-config",
                str(config_file),
                "--sao-weights",
                str(tmp_path / "bad.safetensors"),
            ]
        )
        == 2
    )
    assert "missing tensor model.model.preprocess_conv.weight" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_checkpoint_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    model = LatentDiffusion(ModelConfig(sample_size=2048 * 8))
    ema = {name: p.detach() + 1 for name, p in model.trainable_parameters().items()}
    folder = save_checkpoint(
        tmp_path / "step-3", model, ema_state=ema, weights="trained", step=3, metadata={"train": {"lr": 1e-4}}
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "ema.safetensors",
        "model.safetensors",
        "text_encoder",
    ]
    info = read_checkpoint_info(folder)
    assert (info.kind, info.weights, info.step, info.metadata, info.has_ema) == (
        "diffusion",
        "trained",
        3,
        {"train": {"lr": 1e-4}},
        True,
    )
    assert info.config.conditioning.prompt.path == "text_encoder"
    raw = load_checkpoint(folder, use_ema=False)
    assert all(
        torch.equal(a, b) for a, b in zip(raw.own_state_dict().values(), model.own_state_dict().values(), strict=True)
    )
    averaged = load_checkpoint(folder)
    assert torch.equal(averaged.dit.project_in.weight, ema["dit.project_in.weight"])
    assert torch.equal(averaged.vae.encoder.layers[0].weight_v, model.vae.encoder.layers[0].weight_v)
    prompts = ["a calm piano", "techno"]
    torch.testing.assert_close(
        raw.conditioners.text_encoder.encode(prompts, torch.device("cpu"))[0],
        model.conditioners.text_encoder.encode(prompts, torch.device("cpu"))[0],
    )
    assert torch.equal(load_vae(folder, use_ema=False).decoder.layers[0].weight_v, model.vae.decoder.layers[0].weight_v)
    save_checkpoint(folder, model, step=4)  # replaces the folder in one rename, leaving nothing behind
    assert read_checkpoint_info(folder).step == 4 and [p.name for p in tmp_path.iterdir()] == ["step-3"]


def test_vae_checkpoint_round_trip(tmp_path):
    config = ModelConfig(vae={"channels": 2})
    vae = AudioVAE(config.vae, config.audio_channels)
    save_checkpoint(tmp_path / "vae", vae, config)
    loaded = load_checkpoint(tmp_path / "vae")
    assert isinstance(loaded, AudioVAE) and read_checkpoint_info(tmp_path / "vae").kind == "vae"
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), vae.state_dict().values(), strict=True))


def test_bad_checkpoint_folders_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        read_checkpoint_info(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a soundry checkpoint"):
        read_checkpoint_info(tmp_path)
    vae = AudioVAE(ModelConfig(vae={"channels": 2}).vae, 2)
    save_checkpoint(tmp_path / "vae", vae, ModelConfig(vae={"channels": 3}))
    with pytest.raises(
        StateDictError,
        match=r"362 tensor\(s\) do not fit the model: tensor decoder.layers.0.bias has shape \[32\], the model "
        r"expects \[48\]",
    ):
        load_checkpoint(tmp_path / "vae")
