from safetensors.torch import load_file

from model.training.config import TrainConfig
from model.training.train import train


def config(output, version, **overrides) -> TrainConfig:
    base = {
        "output": str(output),
        "model": "tiny",
        "sample_size": 8192,
        "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": 4,
        "checkpoint_every": 2,
        "log_every": 1,
        "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums, Calm"], "seconds": 0.2, "steps": 2, "cfg_scales": [3.0]},
    }
    for key, value in overrides.items():
        base[key] = value
    return TrainConfig.model_validate(base)


def weights(run, step: int, name: str = "model.safetensors") -> dict:
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / name))


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, audio_version):
    demos = {"prompts": ["Drums, Calm"], "seconds": 0.2, "steps": 2, "cfg_scales": [3.0, 7.0]}
    whole = train(config(tmp_path / "whole", audio_version, demo=demos))
    assert whole["step"] == 4 and not whole["stopped_early"]
    first = train(config(tmp_path / "parts", audio_version, max_steps=2))
    assert first["step"] == 2
    second = train(config(tmp_path / "parts", audio_version))
    assert second["step"] == 4
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = weights(tmp_path / "whole", 4, name), weights(tmp_path / "parts", 4, name)
        assert a.keys() == b.keys()
        different = [k for k in a if not (a[k] == b[k]).all()]
        assert not different, f"{name}: {different[:3]} differ after resuming"
    before = weights(tmp_path / "whole", 2)
    after = weights(tmp_path / "whole", 4)
    assert any(not (before[k] == after[k]).all() for k in after if k.startswith("dit."))  # it did train
    written = sorted(p.name for p in (tmp_path / "whole" / "demos" / "step-00000004").iterdir())
    assert written == ["demo-0-cfg3.png", "demo-0-cfg3.wav", "demo-0-cfg7.png", "demo-0-cfg7.wav", "prompts.json"]
    assert list((tmp_path / "whole" / "tensorboard").iterdir())


def test_vae_trains_resumes_exactly_and_feeds_the_diffusion_trainer(tmp_path, audio_version):
    from model.training.config import VAETrainConfig
    from model.training.train_vae import train_vae

    def vae_config(output, **overrides):
        return VAETrainConfig.model_validate(
            {
                "output": str(output),
                "model": "tiny",
                "sample_size": 8192,
                "device": "cpu",
                "data": {"version": audio_version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
                "max_steps": 4,
                "adversarial_start": 2,
                "checkpoint_every": 2,
                "log_every": 1,
                "losses": {"fft_sizes": [256, 64], "discriminator_ffts": [256, 64], "discriminator_filters": 4},
                **overrides,
            }
        )

    whole = train_vae(vae_config(tmp_path / "vae"))
    assert whole["step"] == 4 and "loss_discriminator" in whole and "loss_adversarial" in whole
    train_vae(vae_config(tmp_path / "vae-parts", max_steps=2))
    train_vae(vae_config(tmp_path / "vae-parts"))
    for name in ("model.safetensors", "ema.safetensors", "discriminator.safetensors"):
        a, b = weights(tmp_path / "vae", 4, name), weights(tmp_path / "vae-parts", 4, name)
        assert all((a[k] == b[k]).all() for k in a), f"{name} differs after resuming"
    vae_folder = tmp_path / "vae" / "checkpoints" / "step-00000004"
    summary = train(config(tmp_path / "dit", audio_version, vae=str(vae_folder), max_steps=1))
    assert summary["step"] == 1
    dit_weights = weights(tmp_path / "dit", 1)
    vae_ema = load_file(str(vae_folder / "ema.safetensors"))
    assert all((dit_weights[f"vae.{k}"] == v).all() for k, v in vae_ema.items())  # the frozen VAE is the trained one


def test_a_run_stopped_at_the_end_of_an_epoch_resumes_into_the_next(tmp_path, audio_version):
    from shards.manifest import read_manifest

    per_epoch = read_manifest(audio_version)["splits"]["train"]["clips"] // 2
    assert (
        train(config(tmp_path / "run", audio_version, max_steps=per_epoch, checkpoint_every=per_epoch))["step"]
        == per_epoch
    )
    assert train(config(tmp_path / "run", audio_version, max_steps=per_epoch + 2))["step"] == per_epoch + 2


def test_a_damaged_checkpoint_stops_the_resume_with_a_way_out(tmp_path, audio_version):
    import shutil

    import pytest
    import torch

    from model.checkpoint import CheckpointError

    run = tmp_path / "run"
    train(config(run, audio_version, max_steps=2, checkpoint_every=1))
    last = run / "checkpoints" / "step-00000002"
    state, optimizer = last / "training_state.pt", last / "optimizer.pt"
    pristine = state.read_bytes()

    # written by another optimizer layout: state keyed by position, not by parameter name
    saved = torch.load(optimizer, weights_only=True)
    saved["state"] = dict(enumerate(saved["state"].values()))
    torch.save(saved, optimizer)
    with pytest.raises(CheckpointError, match=r"cannot resume from .*step-00000002: KeyError.*init_from"):
        train(config(run, audio_version))

    state.write_bytes(pristine[: len(pristine) // 2])  # copied in part
    with pytest.raises(CheckpointError, match=r"step-00000002: (RuntimeError|OSError).*remove the folder"):
        train(config(run, audio_version))
    state.write_bytes(pristine)
    (last / "ema.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"ema.safetensors: no such file"):
        train(config(run, audio_version))

    shutil.rmtree(last)  # the way out the message gives
    assert train(config(run, audio_version))["step"] == 4


def test_fine_tuning_from_a_checkpoint_folder_takes_its_weights_and_a_new_crop_length(tmp_path, audio_version):
    import json

    import pytest
    import torch

    from model.training.train import TrainError

    train(config(tmp_path / "base", audio_version, max_steps=2))
    base = tmp_path / "base" / "checkpoints" / "step-00000002"
    settings = {
        key: value for key, value in config(tmp_path / "tuned", audio_version).model_dump().items() if key != "model"
    }
    # Another seed: its random weights differ from the base run's, so only the folder can explain a match.
    tuned = TrainConfig.model_validate(
        {**settings, "init_from": str(base), "sample_size": 4096, "max_steps": 1, "seed": 7}
    )
    assert train(tuned)["step"] == 1
    folder = tmp_path / "tuned" / "checkpoints" / "step-00000001"
    assert json.loads((folder / "config.json").read_text())["model"]["sample_size"] == 4096
    start, after = load_file(str(base / "ema.safetensors")), weights(tmp_path / "tuned", 1)
    for key, value in start.items():  # one small step from the folder's EMA weights, not from random ones
        assert torch.allclose(after[key], value, atol=0.05), key

    with pytest.raises(TrainError, match="leave `model` empty"):
        train(
            TrainConfig.model_validate(
                {**settings, "output": str(tmp_path / "clash"), "model": "small", "init_from": str(base)}
            )
        )


def test_text_encoder_option_reads_the_prompt_encoder_from_a_local_folder(tmp_path, audio_version):
    import json

    import pytest

    from model.text_encoder import RANDOM_MARKER, T5TextEncoder, TextEncoderError

    t5 = tmp_path / "t5"  # transformers' layout, as a user's t5 download is: the stand-in saved, its marker removed
    T5TextEncoder.stand_in("tiny", 16).save(t5)
    t5_config = json.loads((t5 / "config.json").read_text())
    del t5_config[RANDOM_MARKER]
    (t5 / "config.json").write_text(json.dumps(t5_config))
    train(config(tmp_path / "second", audio_version, max_steps=1, checkpoint_every=1, text_encoder=str(t5)))
    folder = tmp_path / "second" / "checkpoints" / "step-00000001"
    assert json.loads((folder / "config.json").read_text())["model"]["conditioning"]["prompt"]["path"] == str(t5)
    assert not (folder / "text_encoder").exists()  # a real encoder stays where it is

    # A fine-tune reads the folder's model with another encoder location (e.g. another machine's path).
    settings = {
        k: v for k, v in config(tmp_path / "third", audio_version, max_steps=1).model_dump().items() if k != "model"
    }
    with pytest.raises(TextEncoderError, match="no config.json"):
        train(
            TrainConfig.model_validate(
                {**settings, "init_from": str(folder), "text_encoder": str(tmp_path / "elsewhere")}
            )
        )
    tuned = train(TrainConfig.model_validate({**settings, "init_from": str(folder), "text_encoder": str(t5)}))
    assert tuned["step"] == 1
