"""`soundry export`: our checkpoints as the files stable-audio-tools reads, checked by reading them back."""

import json
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import ModelConfig
from model.latent_diffusion import LatentDiffusion
from model.sao.checkpoint import load_sao, load_sao_vae, sao_state_dict
from model.sao.export import ExportError, export_sao
from model.vae import AudioVAE
from orchestration.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = LatentDiffusion(ModelConfig(sample_size=2048 * 8))
    ema = {name: p.detach() * 0.5 for name, p in model.trainable_parameters().items()}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "step-7", model, ema_state=ema, step=7)


def test_a_diffusion_export_loads_back_with_the_ema_weights(tmp_path, trained):
    done = export_sao(trained, tmp_path / "sao")
    assert (done.kind, done.weights, done.step) == ("diffusion", "ema", 7)
    assert sorted(p.name for p in (tmp_path / "sao").iterdir()) == ["model.safetensors", "model_config.json"]
    assert any("random stand-in" in w for w in done.warnings)
    back = load_sao(tmp_path / "sao" / "model_config.json", tmp_path / "sao" / "model.safetensors")
    expected = load_checkpoint(trained, use_ema=True)
    assert back.config.model_dump(exclude={"conditioning"}) == expected.config.model_dump(exclude={"conditioning"})
    ours, theirs = sao_state_dict(expected), sao_state_dict(back)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    raw = export_sao(trained, tmp_path / "raw", use_ema=False)
    assert raw.weights == "model"
    assert not torch.equal(
        load_sao(tmp_path / "raw" / "model_config.json", tmp_path / "raw" / "model.safetensors").dit.project_in.weight,
        back.dit.project_in.weight,
    )


def test_a_vae_export_loads_back(tmp_path):
    config = ModelConfig(vae={"channels": 2})
    vae = AudioVAE(config.vae, config.audio_channels)
    save_checkpoint(tmp_path / "vae", vae, config)
    export_sao(tmp_path / "vae", tmp_path / "sao")
    document = json.loads((tmp_path / "sao" / "model_config.json").read_text())
    assert document["model_type"] == "autoencoder" and document["model"]["latent_dim"] == 64
    back = load_sao_vae(tmp_path / "sao" / "model.safetensors", tmp_path / "sao" / "model_config.json")
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), vae.state_dict().values(), strict=True))


def test_cli(tmp_path, trained, capsys):
    assert main(["export", str(trained), str(tmp_path / "out")]) == 0
    assert "step 7, ema weights" in capsys.readouterr().err
    assert main(["export", str(trained), str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export", str(trained), str(tmp_path / "out"), "--overwrite", "--no-ema"]) == 0
    assert main(["export", str(tmp_path), str(tmp_path / "other")]) == 2
    assert "no config.json" in capsys.readouterr().err
    with pytest.raises(ExportError):
        export_sao(trained, tmp_path / "out")
    (tmp_path / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(trained), str(tmp_path / "notes.txt"), *extra]) == 2
        assert "notes.txt is a file; export writes a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
