"""`soundry train --ray-address ...`: the same training function on a Ray cluster, one Ray
Train worker per GPU (or per CPU process), which sets up the process group each rank joins."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from curation.core.extras import needs_extra
from model.training.config import TrainConfig
from model.training.train import SUMMARY


def train_on_ray(config: TrainConfig, address: str, workers: int) -> dict[str, Any]:
    with needs_extra("ray", "--ray-address", "ray"):
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

    ray.init(address=None if address == "local" else address, ignore_reinit_error=True)
    use_gpu = config.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= workers
    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config={"config": config.model_dump(mode="json")},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(name="soundry-train", storage_path=os.path.abspath(os.path.join(config.output, "ray"))),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    # Rank 0 wrote the run's summary where every node can see the run folder.
    return json.loads((Path(config.output) / SUMMARY).read_text())


def _train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    from model.training.train import train

    train(TrainConfig.model_validate(loop_config["config"]))
