import pytest
from safetensors.torch import load_file

from model.train import train
from model.train_config import TrainConfig


def config(output, version, **overrides) -> TrainConfig:
    base = {
        "output": str(output), "model": "tiny", "sample_size": 8192, "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": 4, "checkpoint_every": 2, "log_every": 1, "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums, Calm"], "seconds": 0.2, "steps": 2},
    }
    for key, value in overrides.items():
        base[key] = value
    return TrainConfig.model_validate(base)


def weights(run, step: int, name: str = "model.safetensors") -> dict:
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / name))


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, audio_version):
    whole = train(config(tmp_path / "whole", audio_version))
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
    demos = sorted(p.name for p in (tmp_path / "whole" / "demos" / "step-00000004").iterdir())
    assert demos == ["demo-0.png", "demo-0.wav", "prompts.json"]
    assert list((tmp_path / "whole" / "tensorboard").iterdir())
