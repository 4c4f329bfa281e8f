import pytest

from model.training.config import TrainConfig

pytestmark = pytest.mark.slow


def test_ray_train_runs_a_few_steps_on_a_local_cluster(tmp_path, audio_version, monkeypatch):
    from orchestration.jobs.train_ray import train_on_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = TrainConfig.model_validate(
        {
            "output": str(tmp_path / "run"),
            "model": "tiny",
            "sample_size": 8192,
            "device": "cpu",
            "data": {"version": audio_version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
            "max_steps": 2,
            "checkpoint_every": 2,
            "log_every": 1,
            "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
        }
    )
    import ray

    try:
        metrics = train_on_ray(config, "local", workers=2)
    finally:
        ray.shutdown()
    assert metrics["step"] == 2 and metrics["world_size"] == 2 and metrics["replicas_agree"]
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "model.safetensors").exists()
