"""The trainer's options at size, tested at the tiny size in one process: activation checkpointing
and torch.compile, validation, W&B, throughput figures, recipes, refusing a changed resume, and
SAO's fixed LayerNorm betas through training and export."""

import json

import pytest
import torch
from safetensors.torch import load_file

from model.config import ModelConfig
from model.training.config import TrainConfig
from model.training.train import train


def config(output, version, **overrides) -> TrainConfig:
    base = {
        "output": str(output),
        "model": "tiny",
        "sample_size": 8192,
        "device": "cpu",
        "data": {"version": version, "batch_size": 2, "workers": 0, "shuffle_buffer": 4},
        "max_steps": 2,
        "checkpoint_every": 2,
        "log_every": 1,
        "schedule": {"warmup_steps": 2},
        "demo": {"prompts": ["Drums"], "seconds": 0.2, "steps": 1, "cfg_scales": [3.0]},
    }
    return TrainConfig.model_validate(base | overrides)


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run, step: int) -> dict:
    return load_file(str(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, audio_version):
    """A plain 2-step run (its MFU against a peak of 1 TFLOP/s), which several tests read. On one
    intra-op thread, as the tests that compare with it (the autouse fixture is set up after this one):
    another thread count sums in another order."""
    run = tmp_path_factory.mktemp("options") / "plain"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train(config(run, audio_version, peak_tflops=1.0))["step"] == 2
    finally:
        torch.set_num_threads(before)
    return run


def test_activation_checkpointing_and_compiled_blocks_train_to_the_same_loss(plain, tmp_path, audio_version):
    """Every other block checkpointed and every block compiled (aot_eager: dynamo and AOTAutograd's
    graphs without generating kernels, minutes faster on a CPU than inductor): the same losses and
    weights as the plain run, to float tolerance."""
    from torch._dynamo.utils import counters

    options = {"activation_checkpointing": 2, "compile": "on", "compile_backend": "aot_eager", "peak_tflops": 1.0}
    counters.clear()
    assert train(config(tmp_path / "other", audio_version, **options))["step"] == 2
    assert counters["stats"]["unique_graphs"] >= 1  # the blocks did run compiled
    a, b = [row["loss"] for row in metrics(plain)], [row["loss"] for row in metrics(tmp_path / "other")]
    assert a == pytest.approx(b, rel=1e-5)
    before, after = weights(plain, 2), weights(tmp_path / "other", 2)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_validation_loss_is_logged_at_fixed_times_and_repeats_exactly(tmp_path, split_version, audio_version):
    from model.training.data import loader_config
    from model.training.validation import Validation

    validation = {"every": 1, "batches": 2, "times": [0.2, 0.8]}
    summary = train(config(tmp_path / "run", split_version, validation=validation, max_steps=2))
    rows = metrics(tmp_path / "run")
    assert [row["step"] for row in rows] == [1, 2]
    assert all({"valid_loss", "valid_loss_t0.2", "valid_loss_t0.8", "loss"} <= row.keys() for row in rows)
    assert rows[0]["valid_loss"] == pytest.approx((rows[0]["valid_loss_t0.2"] + rows[0]["valid_loss_t0.8"]) / 2)
    assert rows[0]["valid_loss"] != rows[1]["valid_loss"]  # the weights moved between the two
    assert summary["valid_loss"] == rows[1]["valid_loss"]
    # The same weights, data, times and noise: the same figure in a run that resumes into step 2.
    train(config(tmp_path / "parts", split_version, validation=validation, max_steps=1, checkpoint_every=1))
    train(config(tmp_path / "parts", split_version, validation=validation, max_steps=2))
    assert metrics(tmp_path / "parts")[-1]["valid_loss"] == rows[1]["valid_loss"]
    # A version without the split: the run says so (and trains on).
    said = []
    off = config(tmp_path / "off", audio_version, validation=validation)
    assert not Validation(off, loader_config(off.data, ModelConfig()), torch.device("cpu"), said.append).due(1)
    assert "has no 'valid' split (it has train)" in said[0]


def test_throughput_figures_use_the_dit_s_counted_flops(plain):
    """The FLOPs formula equals torch's count of the DiT's forward (math attention, so its products
    are counted too), and the log carries samples/s, tokens/s, TFLOP/s and MFU."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from model.latent_diffusion import LatentDiffusion
    from model.training.throughput import dit_forward_flops

    for conditioning in ({}, {"cross_attention_ids": ["prompt", "seconds_total"], "global_ids": ["seconds_start"]}):
        model_config = ModelConfig(sample_size=2048 * 16, conditioning=conditioning)
        model = LatentDiffusion(model_config)
        batch = {"prompt": ["a", "b"], "seconds_start": torch.zeros(2), "seconds_total": torch.full((2,), 9.0)}
        cond = model.condition(batch)
        numbers = [getattr(model.conditioners, name) for name in ("seconds_start", "seconds_total")]
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            model.dit(torch.randn(2, 64, 16), torch.rand(2), cond.cross_tokens, cond.global_cond)
            for number in numbers:
                number(torch.zeros(2))
        assert counter.get_total_flops() == 2 * dit_forward_flops(model_config, 16)

    row = metrics(plain)[-1]
    assert row["tokens_per_s"] == pytest.approx(row["samples_per_s"] * 5)  # 4 latent frames + the prepended token
    assert row["mfu"] == pytest.approx(row["tflops_per_device"]) and row["tflops_per_device"] > 0


def wandb_history(path) -> list[dict]:
    """The history rows of an offline W&B run file: records in LevelDB's log format (after a 7-byte
    header, 32 KiB blocks of chunks: checksum, length, type), each a protobuf Record."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending, rows = path.read_bytes(), 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                )
    return rows


def test_weights_and_biases_logs_offline_and_is_an_extra(tmp_path, audio_version, monkeypatch):
    import sys

    from curation.core.extras import MissingExtra

    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(config(run, audio_version, wandb={"enabled": True, "mode": "offline", "project": "test"}))
    run_id = (run / "wandb_run_id").read_text().strip()
    rows = wandb_history(next((run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")))
    assert [row["train/loss"] for row in rows] == [row["loss"] for row in metrics(run)]
    assert rows[-1]["demo/cfg3/0/_type"] == "audio-file" and rows[-1]["demo/cfg3/0/caption"] == "Drums"

    monkeypatch.setitem(sys.modules, "wandb", None)  # as without the extra installed
    with pytest.raises(MissingExtra, match=r"soundry\[wandb\]"):
        train(config(tmp_path / "without", audio_version, wandb={"enabled": True, "mode": "offline"}))


def test_a_resume_under_a_changed_config_is_refused_naming_the_fields(plain, tmp_path, audio_version):
    import shutil

    from model.training.resume import ResumeError

    run = tmp_path / "run"
    shutil.copytree(plain, run)
    changed = {"data": {"version": audio_version, "batch_size": 2, "workers": 0, "shuffle_buffer": 8}}
    with pytest.raises(
        ResumeError, match=r"other values of data.shuffle_buffer, optimizer.lr \(data.shuffle_buffer: 4 -> 8"
    ):
        train(config(run, audio_version, **changed, optimizer={"lr": 1e-4}))
    # Execution fields may change: cadence, workers, demos, max_steps.
    execution = {"data": {"version": audio_version, "batch_size": 2, "workers": 1, "shuffle_buffer": 4}}
    resumed = train(config(run, audio_version, **execution, log_every=2, checkpoint_every=5, max_steps=3))
    assert resumed["step"] == 3


def test_layer_norm_betas_stay_zero_through_training_and_export(plain, tmp_path):
    from model.sao.export import export_sao

    trained = weights(plain, 2)
    betas = [k for k in trained if k.endswith("norm.bias")]
    assert len(betas) == 12 and all(not trained[k].any() for k in betas)  # tiny: 4 blocks x 3 norms
    assert any(trained[k].ne(1).any() for k in trained if k.endswith("norm.weight"))  # the scales did train
    export_sao(plain / "checkpoints" / "step-00000002", tmp_path / "exported")
    exported = load_file(str(tmp_path / "exported" / "model.safetensors"))
    exported_betas = [k for k in exported if k.startswith("model.model.transformer.") and k.endswith("norm.beta")]
    assert len(exported_betas) == 12 and all(not exported[k].any() for k in exported_betas)


def test_recipes_fill_what_the_config_leaves_unset(tmp_path, capsys):
    from orchestration.cli.main import main

    assert main(["train", "--output", "o", "--data.version", "v", "--model", "sao-1.0", "--print-config"]) == 0
    printed = capsys.readouterr().out
    for line in ("recipe: sao-1.0", "lr: 5.0e-05", "ema_decay: 0.9999", "timesteps: sobol", "checkpoint_every: 10000"):
        assert line in printed
    assert "- 5.0" in printed and "activation_checkpointing: 1" in printed
    # What the user sets wins over the recipe; a tiny model keeps the field defaults.
    assert (
        main(
            [
                "train",
                "--output",
                "o",
                "--data.version",
                "v",
                "--model",
                "sao-1.0",
                "--optimizer.lr",
                "1e-4",
                "--print-config",
            ]
        )
        == 0
    )
    assert "lr: 0.0001" in capsys.readouterr().out
    assert main(["train", "--output", "o", "--data.version", "v", "--print-config"]) == 0
    tiny = capsys.readouterr().out
    assert "recipe: tiny" in tiny and "lr: 0.001" in tiny and "checkpoint_every: 100\n" in tiny


def test_periodic_eval_logs_fad_and_clap_score_beside_the_losses(tmp_path, split_version):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    clap = {"backend": "random", "architecture": "HTSAT-mini", "audio_batch_size": 4, "threads": 1}
    periodic = {"every": 1, "prompts": 2, "steps": 1, "clap": clap}
    train(config(tmp_path / "run", split_version, eval=periodic, max_steps=2))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    fad, score = events.Scalars("eval/eval_fad"), events.Scalars("eval/eval_clap_score")
    assert [e.step for e in fad] == [e.step for e in score] == [1, 2]
    assert all(e.value > 0 for e in fad) and all(-1 <= e.value <= 1 for e in score)
    assert fad[0].value != fad[1].value  # the same prompts and noise: only the weights moved
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]  # beside the losses
    assert [row["eval_fad"] for row in metrics(tmp_path / "run") if "eval_fad" in row] == pytest.approx(
        [e.value for e in fad]
    )
