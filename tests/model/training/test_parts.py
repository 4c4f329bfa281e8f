import math
import os
import signal

import pytest
import torch

from model.training.ema import EMA
from model.training.lr_schedule import ScheduleConfig, lr_factor
from model.training.preemption import StopRequest


def test_ema_follows_an_exponential_average():
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.5)
    for value in (1.0, 1.0, 1.0):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.875))
    copy = torch.nn.Linear(2, 1, bias=False)
    ema.copy_to(copy)
    assert torch.equal(copy.weight, ema.shadow["weight"])
    restored = EMA(copy, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 3 and torch.equal(restored.shadow["weight"], ema.shadow["weight"])


def test_ema_of_sharded_parameters_averages_each_shard_and_gathers_whole_tensors(tmp_path):
    """FSDP2 turns parameters into DTensors (here on a one-rank mesh, the layout without the
    second process): the average follows the plain one, full_state gives whole tensors, and
    loading them back gives each rank its shard."""
    import copy

    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = torch.nn.Linear(3, 5)
        sharded = fully_shard(copy.deepcopy(plain), mesh=init_device_mesh("cpu", (1,)))
        assert isinstance(sharded.weight, DTensor)
        averages = EMA(plain, decay=0.5), EMA(sharded, decay=0.5)
        for value in (1.0, 3.0):
            for module, ema in zip((plain, sharded), averages, strict=True):
                with torch.no_grad():
                    for p in module.parameters():
                        p.fill_(value)
                ema.update(module)
        whole = averages[1].full_state()
        assert whole.keys() == {"weight", "bias"} and not any(isinstance(t, DTensor) for t in whole.values())
        assert all(torch.equal(whole[k], averages[0].shadow[k]) for k in whole)
        restored = EMA(sharded, decay=0.5)
        restored.load_state_dict({"updates": 2, "shadow": whole})
        assert isinstance(restored.shadow["weight"], DTensor) and restored.updates == 2
        assert all(torch.equal(restored.full_state()[k], whole[k]) for k in whole)
    finally:
        dist.destroy_process_group()


def test_ema_warmup_starts_close_to_the_model():
    ema = EMA(torch.nn.Linear(1, 1), decay=0.999, warmup_steps=1000)
    assert ema.current_decay() < 0.01
    ema.updates = 10**7
    assert ema.current_decay() == 0.999


@pytest.mark.parametrize("kind", ["constant", "cosine", "inverse"])
def test_warmup_is_linear_then_the_schedule_decays(kind):
    config = ScheduleConfig(kind=kind, warmup_steps=10, inv_gamma=100, power=0.5, min_factor=0.1)
    decay_during_warmup = (1 + 4 / 100) ** -0.5 if kind == "inverse" else 1.0
    assert lr_factor(0, config, 1000) == pytest.approx(0.1)
    assert lr_factor(4, config, 1000) == pytest.approx(0.5 * decay_during_warmup)
    after = [lr_factor(s, config, 1000) for s in (10, 500, 999)]
    if kind == "constant":
        assert after == [1.0, 1.0, 1.0]
    else:
        assert after[0] > after[1] > after[2] > 0
    if kind == "cosine":
        assert after[2] == pytest.approx(0.1, abs=1e-4)
    if kind == "inverse":
        assert after[1] == pytest.approx((1 + 500 / 100) ** -0.5)
        assert math.isclose(lr_factor(10, config, 1000), (1 + 10 / 100) ** -0.5)


def test_sigterm_sets_the_stop_request_instead_of_killing():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop = StopRequest()
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.signal_name == "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_rng_state_round_trips_through_a_checkpoint_file(tmp_path):
    import random

    import numpy as np

    from model.training.state import load_training_state, rng_state, save_training_state, set_rng_state

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_training_state(tmp_path, {"rng": rng_state(), "step": 5})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = load_training_state(tmp_path)
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected and state["step"] == 5


def test_latest_checkpoint_ignores_unfinished_saves_and_pruning_keeps_the_newest(tmp_path):
    from model.checkpoint import checkpoint_writer
    from model.training.state import latest_checkpoint, prune_checkpoints, step_folder

    for step in (10, 30, 40):
        with checkpoint_writer(step_folder(tmp_path, step)) as staging:
            (staging / "a").write_text("done")
    with pytest.raises(RuntimeError):
        with checkpoint_writer(step_folder(tmp_path, 50)) as staging:
            (staging / "a").write_text("half")
            assert latest_checkpoint(tmp_path) == step_folder(tmp_path, 40)  # not yet visible
            raise RuntimeError("crash while saving")
    (tmp_path / ".step-00000060.deadbeef.tmp").mkdir()  # a save killed with -9
    assert latest_checkpoint(tmp_path) == step_folder(tmp_path, 40)
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000030", "step-00000040"]


def test_a_torch_without_fsdp2_s_public_api_is_named_with_the_floor(monkeypatch):
    import sys
    from pathlib import Path

    from model.training.torch_support import TORCH_FLOOR, TorchTooOld, require_fsdp2

    require_fsdp2()  # this torch has it
    monkeypatch.setitem(sys.modules, "torch.distributed.tensor", None)  # as torch 2.4 lacks the public module
    with pytest.raises(TorchTooOld) as error:
        require_fsdp2()
    assert f"need torch >= {TORCH_FLOOR} " in str(error.value)
    assert f"this environment has torch {torch.__version__}" in str(error.value)
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text()
    assert f'"torch>={TORCH_FLOOR}",' in pyproject  # the floor the package states is the one checked
